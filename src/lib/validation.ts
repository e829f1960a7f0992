import { AjvCompiler } from '@fastify/ajv-compiler'
import type { TSchema } from '@sinclair/typebox'
import type { FastifySchemaCompiler, FastifyServerOptions, FastifySchema } from 'fastify'

/** `multipleOfPrecision`: with floating point, 19.99 is not an exact multiple of 0.01; compare to 1e-6. */
const shared = { allErrors: true, removeAdditional: false, useDefaults: true, multipleOfPrecision: 6 } as const
/** JSON bodies keep their types: `"name": 123` is an error, never "123". */
export const bodyOptions = { ...shared, coerceTypes: false } as const
/** Query strings, path parameters and headers are text: coerce them (`limit=20`, a repeated `tag`). */
const textOptions = { ...shared, coerceTypes: 'array' } as const

type SchemaController = NonNullable<FastifyServerOptions['schemaController']>
type ExternalSchemas = Parameters<ReturnType<typeof AjvCompiler>>[0]

/**
 * Node presents header names in lower case; schemas name them as HTTP writes them (`If-Match`).
 * Fastify normalizes header schemas only for its default compiler, so ours does it.
 */
function lowerCaseHeaderNames (schema: FastifySchema): FastifySchema {
  const { properties, required } = schema as { properties?: Record<string, unknown>, required?: string[] }
  return {
    ...schema,
    ...(properties === undefined ? {} : { properties: Object.fromEntries(Object.entries(properties).map(([name, value]) => [name.toLowerCase(), value])) }),
    ...(required === undefined ? {} : { required: required.map((name) => name.toLowerCase()) })
  } as FastifySchema
}

/**
 * Validation settings per request part. Every string and array in our schemas is bounded,
 * which is what makes reporting every error (`allErrors`) safe.
 */
export function schemaController (): SchemaController {
  const factory = AjvCompiler()
  const buildValidator = (externalSchemas: ExternalSchemas): FastifySchemaCompiler<FastifySchema> => {
    // At run time Fastify calls the compiled factory with the route definition, not with `(schema, meta)` as typed.
    const body = factory(externalSchemas, { customOptions: bodyOptions }) as unknown as FastifySchemaCompiler<FastifySchema>
    const text = factory(externalSchemas, { customOptions: textOptions }) as unknown as FastifySchemaCompiler<FastifySchema>
    return (route) => {
      if (route.httpPart === 'body') return body(route)
      return text(route.httpPart === 'headers' ? { ...route, schema: lowerCaseHeaderNames(route.schema) } : route)
    }
  }
  return { compilersFactory: { buildValidator: buildValidator as unknown as NonNullable<SchemaController['compilersFactory']>['buildValidator'] } }
}

/** One failure Ajv reports. */
export interface AjvIssue { instancePath: string, keyword: string, message?: string, params: Record<string, unknown> }

type CompiledValidator = ((data: unknown) => boolean) & { errors?: AjvIssue[] | null }

/**
 * A validator outside any route, with the settings of JSON bodies (every error, no coercion, unknown fields refused)
 * but without defaults, so a value is checked as it was written: the failures, none when it is valid.
 */
export function compileBodyValidator (schema: TSchema): (value: unknown) => AjvIssue[] {
  let validate: CompiledValidator | undefined
  AjvCompiler()({}, {
    customOptions: { ...bodyOptions, useDefaults: false },
    onCreate: (ajv) => { validate = ajv.compile(schema) as CompiledValidator }
  })
  const compiled = validate
  if (compiled === undefined) throw new Error('the validator was not compiled')
  return (value) => compiled(value) ? [] : compiled.errors ?? []
}

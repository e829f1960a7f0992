import { AjvCompiler } from '@fastify/ajv-compiler'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import type { TSchema } from '@sinclair/typebox'
import { MAX_LISTED_ERRORS } from '../../schemas/common.js'
import type { Ajv } from 'ajv'
import type { FastifySchemaCompiler, FastifyServerOptions, FastifySchema } from 'fastify'

const shared = { allErrors: true, removeAdditional: false, useDefaults: true, discriminator: true } as const
/** JSON bodies keep their types: `"name": 123` is an error, never "123". */
export const bodyOptions = { ...shared, coerceTypes: false } as const
/** Query strings, path parameters and headers are text: coerce them (`limit=20`, a repeated `tag`). */
const textOptions = { ...shared, coerceTypes: 'array' } as const

type SchemaController = NonNullable<FastifyServerOptions['schemaController']>
type SerializerFactory = NonNullable<NonNullable<SchemaController['compilersFactory']>['buildSerializer']>

/** Our own keyword: how a schema says "at most N decimals" (money). The published documents leave it out (see docs). */
export const DECIMALS = 'decimals'

interface DecimalsValidator {
  (places: number, value: number): boolean
  errors?: Array<{ keyword: string, message: string, params: Record<string, unknown> }>
}

/**
 * `decimals: 2` holds when the number is exactly the double nearest to a number of 2 decimals (19.99, not 19.991).
 * JSON Schema's `multipleOf: 0.01` cannot say that: in floating point 19.99 / 0.01 is 1998.9999999999998.
 */
const atMostDecimals: DecimalsValidator = (places, value) => {
  const valid = Number(value.toFixed(places)) === value
  atMostDecimals.errors = valid ? [] : [{ keyword: DECIMALS, message: `must have at most ${places} decimals`, params: { decimals: places } }]
  return valid
}

/**
 * A schema (or a whole document) as published: without our own keywords, which standard validators refuse in
 * strict mode and generators do not know. Descriptions say the same in words.
 */
export function published<T> (value: T): T {
  if (Array.isArray(value)) return value.map(published) as T
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(Object.entries(value).filter(([key]) => key !== DECIMALS).map(([key, child]) => [key, published(child)])) as T
}

function addDecimals (ajv: Ajv): Ajv {
  ajv.addKeyword({ keyword: DECIMALS, type: 'number', schemaType: 'number', errors: true, validate: atMostDecimals })
  return ajv
}
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

type Validate = ((data: unknown) => boolean) & { errors?: AjvIssue[] | null }

/** Whether a value holds a number that is not finite: the common answer, no, without building a path. */
function holdsNonFinite (value: unknown): boolean {
  if (typeof value === 'number') return !Number.isFinite(value)
  if (value === null || typeof value !== 'object') return false
  for (const key in value) if (holdsNonFinite((value as Record<string, unknown>)[key])) return true
  return false
}

/** Where a value holds a number that is not finite. */
function nonFinite (value: unknown, path = ''): string[] {
  if (typeof value === 'number') return Number.isFinite(value) ? [] : [path]
  if (value === null || typeof value !== 'object') return []
  return Object.entries(value).flatMap(([key, child]) => nonFinite(child, `${path}/${key}`))
}

/**
 * Ajv coerces the text `Infinity` (or `1e400`) of a query string to a number after checking its type, and checks
 * `minimum`/`maximum` on finite numbers only: `limit=Infinity` would pass. What coerces to no finite number is refused.
 */
function refusingNonFinite (validate: Validate): Validate {
  const wrapped: Validate = (data) => {
    const valid = validate(data)
    if (!holdsNonFinite(data)) {
      wrapped.errors = validate.errors
      return valid
    }
    const infinite = nonFinite(data).map((path): AjvIssue => ({ instancePath: path, keyword: 'finite', message: 'must be a finite number', params: {} }))
    wrapped.errors = infinite.length === 0 ? validate.errors : [...(validate.errors ?? []), ...infinite]
    return valid && infinite.length === 0
  }
  return wrapped
}

/** The value at a JSON pointer (Ajv's `instancePath`) of `root`. */
function at (root: unknown, path: string): unknown {
  let value = root
  for (const segment of path.split('/').slice(1)) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<string, unknown>)[segment.replaceAll('~1', '/').replaceAll('~0', '~')]
  }
  return value
}

/**
 * Whether an error says the value holds too much to be checked item by item: an array past its `maxItems`, or an
 * object with more unknown keys than a problem lists (a few unknown keys are worth naming one by one).
 */
function pastBound (data: unknown, error: AjvIssue): boolean {
  if (error.keyword === 'maxItems') return true
  if (error.keyword !== 'maxProperties') return false
  const value = at(data, error.instancePath)
  const keys = value !== null && typeof value === 'object' ? Object.keys(value).length : 0
  return keys > Number(error.params.limit) + MAX_LISTED_ERRORS
}

/**
 * Every error of a value within its bounds, at the cost of one pass: a first pass stops at the first error (the
 * bounds come first in Ajv's order), and only a value that fails without going far past a bound is validated again
 * for the complete list. A body of a million unknown keys is then one `maxProperties` error, not a million.
 */
function boundedAllErrors (firstError: () => Validate, allErrors: () => Validate): Validate {
  const validate: Validate = (data) => {
    const first = firstError()
    if (first(data)) {
      validate.errors = null
      return true
    }
    const error = first.errors?.[0]
    if (error !== undefined && pastBound(data, error)) {
      validate.errors = [error]
      return false
    }
    const all = allErrors()
    all(data)
    // Objects reject unknown keys: each is named by its `additionalProperties` error, which says more than the count.
    validate.errors = all.errors?.filter((issue) => issue.keyword !== 'maxProperties') ?? null
    return false
  }
  return validate
}

/**
 * `compile`, run the first time its result is needed: a server compiles a validator and a serializer for every part
 * and status of every route, most of which a given process never meets (the complete-error validators are needed
 * only by invalid requests), and compiling them all would be most of its start-up.
 */
export function onFirstUse<T> (compile: () => T): () => T {
  let compiled: T | undefined
  return () => (compiled ??= compile())
}

/**
 * Validation settings per request part. Every string, array and object in our schemas is bounded, which is
 * what makes reporting every error (`allErrors`) safe.
 */
export function schemaController (): SchemaController {
  const factory = AjvCompiler()
  const buildValidator = (externalSchemas: ExternalSchemas): FastifySchemaCompiler<FastifySchema> => {
    // At run time Fastify calls the compiled factory with the route definition, not with `(schema, meta)` as typed.
    type Compile = (route: Parameters<FastifySchemaCompiler<FastifySchema>>[0]) => Validate
    // Each is an Ajv instance holding every shared schema, made when a route first needs it.
    const compiler = (customOptions: object) => onFirstUse(() => factory(externalSchemas, { customOptions, plugins: [addDecimals] }) as unknown as Compile)
    const [bodyFirst, bodyAll] = [compiler({ ...bodyOptions, allErrors: false }), compiler(bodyOptions)]
    const [textFirst, textAll] = [compiler({ ...textOptions, allErrors: false }), compiler(textOptions)]
    const validator = (validate: Validate) => validate as unknown as ReturnType<FastifySchemaCompiler<FastifySchema>>
    const validating = (first: () => Compile, all: () => Compile, route: Parameters<Compile>[0]) =>
      boundedAllErrors(onFirstUse(() => first()(route)), onFirstUse(() => all()(route)))
    return (route) => {
      if (route.httpPart === 'body') return validator(validating(bodyFirst, bodyAll, route))
      const normalized = route.httpPart === 'headers' ? { ...route, schema: lowerCaseHeaderNames(route.schema) } : route
      return validator(refusingNonFinite(validating(textFirst, textAll, normalized)))
    }
  }
  const serializers = SerializerSelector()
  const buildSerializer: SerializerFactory = (externalSchemas, options) => {
    const compile = serializers(externalSchemas, options)
    return (route) => {
      const serializer = onFirstUse(() => compile(route))
      return (data) => serializer()(data)
    }
  }
  return {
    compilersFactory: {
      buildValidator: buildValidator as unknown as NonNullable<SchemaController['compilersFactory']>['buildValidator'],
      buildSerializer
    }
  }
}

/** One failure Ajv reports. */
export interface AjvIssue { instancePath: string, keyword: string, message?: string, params: Record<string, unknown> }

/**
 * A validator outside any route, with the settings of JSON bodies (every error, no coercion, unknown fields refused)
 * but without defaults, so a value is checked as it was written: the failures, none when it is valid.
 */
export function compileBodyValidator (schema: TSchema): (value: unknown) => AjvIssue[] {
  const compile = (allErrors: boolean): Validate => {
    let validate: Validate | undefined
    AjvCompiler()({}, {
      customOptions: { ...bodyOptions, useDefaults: false, allErrors },
      plugins: [addDecimals],
      onCreate: (ajv) => { validate = ajv.compile(schema) as Validate }
    })
    if (validate === undefined) throw new Error('the validator was not compiled')
    return validate
  }
  const compiled = boundedAllErrors(onFirstUse(() => compile(false)), onFirstUse(() => compile(true)))
  return (value) => compiled(value) ? [] : compiled.errors ?? []
}

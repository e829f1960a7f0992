import { extname } from 'node:path'
import type { FastifyRequest, FastifySchema, FastifySchemaCompiler } from 'fastify'
import { badRequest, HttpProblem } from '../lib/problem.js'
import { schemaController } from '../lib/validation.js'
import type { ImportFormat } from './repository.js'

export const FILE_PART = 'file'

/** One file of at most `maxBytes`, and room for a few stray fields so they are reported as unknown (400), not as a broken limit. */
export const uploadLimits = (maxBytes: number) => ({ fileSize: maxBytes, files: 1, fields: 4, parts: 5, fieldSize: 1024, fieldNameSize: 100, headerPairs: 20 })

const MULTIPART = /^multipart\/form-data\s*(;|$)/i
const unsupported = (detail: string) => new HttpProblem(415, detail, { code: 'unsupported-media-type' })
const tooLarge = (maxBytes: number) => new HttpProblem(413, `The file is larger than the limit of ${maxBytes} bytes`, { code: 'file-too-large' })
const invalidBody = (path: string, message: string) =>
  badRequest('The request body is invalid', { code: 'validation-error', errors: [{ in: 'body', path, message }] })

/** Refuses a body that is not `multipart/form-data` before it is read. */
export async function requireMultipart (request: FastifyRequest): Promise<void> {
  if (!MULTIPART.test(request.headers['content-type'] ?? '')) {
    throw unsupported('The request body must be multipart/form-data with one part named file')
  }
}

/**
 * Validates an upload route's headers, query and path as on every route; its body is read as a stream
 * by the handler and never becomes `request.body`, so its documented schema is not checked.
 */
export function streamedBodyValidator (): FastifySchemaCompiler<FastifySchema> {
  const buildValidator = schemaController().compilersFactory?.buildValidator
  if (buildValidator === undefined) throw new Error('the schema controller has no validator factory')
  // At run time the factory's result takes the route definition, not `(schema, meta)` as typed.
  const compile = buildValidator({}) as unknown as FastifySchemaCompiler<FastifySchema>
  return (route) => route.httpPart === 'body' ? () => true : compile(route)
}

/** The format of an import file: by its name's extension, else by its declared type. */
export function importFormat (filename: string, mimetype: string): ImportFormat | undefined {
  const extension = extname(filename).toLowerCase()
  if (extension === '.ndjson') return 'application/x-ndjson'
  if (extension === '.csv') return 'text/csv'
  const type = mimetype.split(';')[0]?.trim().toLowerCase()
  if (type === 'application/x-ndjson' || type === 'text/csv') return type
  return undefined
}

/** Errors of the multipart parser: broken limits and malformed bodies are the client's. */
function parserProblem (error: unknown, maxBytes: number): HttpProblem {
  if (error instanceof HttpProblem) return error
  const code = (error as { code?: unknown }).code
  if (code === 'FST_REQ_FILE_TOO_LARGE') return tooLarge(maxBytes)
  if (code === 'FST_FILES_LIMIT') return invalidBody(`/${FILE_PART}`, 'must be the only file')
  if (code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT') return invalidBody('', 'must hold exactly one part, named file')
  return badRequest('The multipart/form-data body is malformed', { code: 'malformed-body' })
}

export interface ImportUpload { format: ImportFormat, data: Buffer }

/** Reads the one `file` part of an import upload, refusing other parts, other formats and files past `maxBytes`. */
export async function readImportUpload (request: FastifyRequest, maxBytes: number): Promise<ImportUpload> {
  let upload: ImportUpload | undefined
  try {
    for await (const part of request.parts({ limits: uploadLimits(maxBytes) })) {
      if (part.type !== 'file' || part.fieldname !== FILE_PART || upload !== undefined) {
        const name = part.fieldname.replaceAll('~', '~0').replaceAll('/', '~1')
        throw invalidBody(`/${name}`, part.fieldname === FILE_PART ? 'must be sent once' : 'is not a known part: send only file')
      }
      const format = importFormat(part.filename, part.mimetype)
      if (format === undefined) {
        throw unsupported('The file must be NDJSON (.ndjson, application/x-ndjson) or CSV (.csv, text/csv)')
      }
      upload = { format, data: await part.toBuffer() }
    }
  } catch (error) {
    throw parserProblem(error, maxBytes)
  }
  if (upload === undefined) throw invalidBody(`/${FILE_PART}`, 'is required')
  return upload
}

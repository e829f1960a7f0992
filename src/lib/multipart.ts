import type { MultipartFile } from '@fastify/multipart'
import type { FastifyRequest, FastifySchema, FastifySchemaCompiler } from 'fastify'
import type { ValidationIssue } from '../../schemas/common.js'
import { badRequest, HttpProblem, invalidRequest, pointer, unsupportedMediaType } from './problem.js'
import { schemaController } from './validation.js'

/** The one part an upload holds. */
const FILE_PART = 'file'

/**
 * Busboy limits for an upload: one file of at most `maxBytes`, and room for a few small stray
 * fields so that they can be reported as unknown (400) rather than as a broken limit.
 */
export const uploadLimits = (maxBytes: number) => ({
  fileSize: maxBytes,
  files: 1,
  fields: 4,
  parts: 5,
  fieldSize: 1024,
  fieldNameSize: 100,
  headerPairs: 20
})

const MULTIPART = /^multipart\/form-data\s*(;|$)/i

/** A preParsing hook: refuses a body that is not `multipart/form-data` before it is read. */
export async function requireMultipart (request: FastifyRequest): Promise<void> {
  if (!MULTIPART.test(request.headers['content-type'] ?? '')) {
    throw unsupportedMediaType('The request body must be multipart/form-data with one part named file')
  }
}

/**
 * The validator compiler of an upload route: headers, query and path are validated as on every route;
 * the body is read as a stream by the handler and never becomes `request.body`, so its documented
 * (`multipart/form-data`, `format: binary`) schema is not checked.
 */
export function streamedBodyValidator (): FastifySchemaCompiler<FastifySchema> {
  const buildValidator = schemaController().compilersFactory?.buildValidator
  if (buildValidator === undefined) throw new Error('the schema controller has no validator factory')
  // At run time the factory's result takes the route definition, not `(schema, meta)` as typed.
  const compile = buildValidator({}) as unknown as FastifySchemaCompiler<FastifySchema>
  return (route) => route.httpPart === 'body' ? () => true : compile(route)
}

/**
 * Past the limit, the rest of the body is not read: the connection is closed after the answer,
 * so a client sending far more learns at once instead of after uploading it all.
 */
const tooLarge = (maxBytes: number) => new HttpProblem(413, `The file is larger than the limit of ${maxBytes} bytes`, {
  code: 'file-too-large',
  headers: { connection: 'close' }
})

/**
 * Collects a file part, rejecting as soon as it passes the size limit. Busboy may have passed it
 * already (a body arriving in one piece is parsed before this runs), so `truncated` is checked too.
 */
function readFilePart (stream: MultipartFile['file'], maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const refuse = () => {
      chunks.length = 0
      stream.destroy()
      reject(tooLarge(maxBytes))
    }
    if (stream.truncated) return refuse()
    stream.on('data', (chunk: Buffer) => { chunks.push(chunk) })
    stream.once('limit', refuse)
    stream.once('end', () => { if (stream.truncated) refuse(); else resolve(Buffer.concat(chunks)) })
    stream.once('error', reject)
  })
}

/** Errors of the multipart parser: broken limits (parts, files, fields) and malformed bodies are the client's. */
function parserProblem (error: unknown, maxBytes: number): HttpProblem {
  if (error instanceof HttpProblem) return error
  const code = (error as { code?: unknown }).code
  if (code === 'FST_REQ_FILE_TOO_LARGE') return tooLarge(maxBytes)
  if (code === 'FST_FILES_LIMIT') return invalidRequest([{ in: 'body', path: pointer(FILE_PART), message: 'must be the only file' }])
  if (code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT') {
    return invalidRequest([{ in: 'body', path: '', message: 'must hold exactly one part, named file' }])
  }
  return badRequest('The multipart/form-data body is malformed', { code: 'malformed-body' })
}

export interface UploadedFile {
  /** The name and type the client declared: hints only, never trusted for what the bytes are. */
  filename: string
  mimetype: string
  data: Buffer
}

/**
 * Reads the `file` part of a multipart upload as a stream, up to `maxBytes`. Other parts are listed
 * as unknown (400), no file part is 400, a file over the limit is 413 (the rest of the body unread).
 */
export async function readUploadedFile (request: FastifyRequest, maxBytes: number): Promise<UploadedFile> {
  const issues: ValidationIssue[] = []
  let file: UploadedFile | undefined
  try {
    for await (const part of request.parts({ limits: uploadLimits(maxBytes) })) {
      if (part.type === 'file' && part.fieldname === FILE_PART) {
        file = { filename: part.filename, mimetype: part.mimetype, data: await readFilePart(part.file, maxBytes) }
      } else if (part.fieldname === FILE_PART) {
        issues.push({ in: 'body', path: pointer(FILE_PART), message: 'must be a file, not a text field' })
      } else {
        issues.push({ in: 'body', path: pointer(part.fieldname), message: 'is not a known part: send only file' })
        // Drained, so the parts after it (and the end of the body) are still read.
        if (part.type === 'file') part.file.resume()
      }
    }
  } catch (error) {
    throw parserProblem(error, maxBytes)
  }
  if (file === undefined && !issues.some((issue) => issue.path === pointer(FILE_PART))) {
    issues.push({ in: 'body', path: pointer(FILE_PART), message: 'is required' })
  }
  if (issues.length > 0 || file === undefined) throw invalidRequest(issues)
  return file
}

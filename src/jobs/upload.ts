import { extname } from 'node:path'
import type { FastifyRequest } from 'fastify'
import { readUploadedFile } from '../lib/multipart.js'
import { unsupportedMediaType } from '../lib/problem.js'
import type { ImportFormat } from './repository.js'

/** The format of an import file: by its name's extension, else by its declared type. */
function importFormat (filename: string, mimetype: string): ImportFormat | undefined {
  const extension = extname(filename).toLowerCase()
  if (extension === '.ndjson') return 'application/x-ndjson'
  if (extension === '.csv') return 'text/csv'
  const type = mimetype.split(';')[0]?.trim().toLowerCase()
  if (type === 'application/x-ndjson' || type === 'text/csv') return type
  return undefined
}

export interface ImportUpload { format: ImportFormat, data: Buffer }

/** Reads the one `file` part of an import upload: NDJSON or CSV (else 415), at most `maxBytes`. */
export async function readImportUpload (request: FastifyRequest, maxBytes: number): Promise<ImportUpload> {
  const { filename, mimetype, data } = await readUploadedFile(request, maxBytes)
  const format = importFormat(filename, mimetype)
  if (format === undefined) throw unsupportedMediaType('The file must be NDJSON (.ndjson, application/x-ndjson) or CSV (.csv, text/csv)')
  return { format, data }
}

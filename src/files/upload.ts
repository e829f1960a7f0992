import type { FastifyRequest } from 'fastify'
import { IMAGE_TYPES } from '../../schemas/files.js'
import { readUploadedFile } from '../lib/multipart.js'
import { unsupportedMediaType } from '../lib/problem.js'
import type { Image } from './repository.js'

/**
 * Reads an image upload and recognises its type by its bytes: anything but a JPEG, PNG, WebP or
 * GIF image is 415, whatever its name or declared type.
 */
export async function readImageUpload (request: FastifyRequest, maxBytes: number): Promise<Image> {
  const { data } = await readUploadedFile(request, maxBytes)
  // Loaded when first needed: most processes start without meeting an upload.
  const { fileTypeFromBuffer } = await import('file-type')
  const type = await fileTypeFromBuffer(data)
  const contentType = IMAGE_TYPES.find((candidate) => candidate === type?.mime)
  if (contentType === undefined) throw unsupportedMediaType('The file must be a JPEG, PNG, WebP or GIF image (recognised by its content, not its name or declared type)')
  return { contentType, data }
}

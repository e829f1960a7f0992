import type { FastifyReply, FastifyRequest } from 'fastify'
import { IMAGE_TYPES, type ImageType } from '../../schemas/files.js'
import { readUploadedFile } from '../lib/multipart.js'
import type { Executor } from '../db/client.js'
import { notFound, unsupportedMediaType } from '../lib/problem.js'
import { findAttachedFile, type FileSlot, type KnownTags, type NewFile, type StoredFile } from './files.js'

/** An uploaded image whose type was recognised from its bytes. */
export interface Image extends NewFile {
  contentType: ImageType
}

/** Caches may keep an image but must revalidate it: a replaced image keeps its URL, and a 304 is cheap. */
const IMAGE_CACHE_CONTROL = 'public, no-cache'
const SHA256_HEX = /^[0-9a-f]{64}$/

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

/** The hashes an `If-None-Match` header lists (weak or strong, as RFC 9110 compares them for GET), or `*`. */
function knownTags (header: string | undefined): KnownTags {
  if (header === undefined) return []
  if (header.trim() === '*') return '*'
  return header.split(',')
    .map((tag) => tag.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1'))
    .filter((hash) => SHA256_HEX.test(hash))
    .slice(0, 50)
}

/** Serves a stored image, or 304 when the client holds it already (its bytes were then not even read). */
function sendImage (reply: FastifyReply, image: StoredFile): FastifyReply {
  reply.header('etag', `"${image.sha256}"`).header('cache-control', IMAGE_CACHE_CONTROL)
    // Images are public: pages on other sites (a frontend listed in CORS_ORIGINS, say) may embed them.
    .header('cross-origin-resource-policy', 'cross-origin')
  if (image.data === null) return reply.code(304).send()
  // PGlite hands bytea over as a Uint8Array, node-postgres as a Buffer: a view, not a copy.
  return reply.type(image.contentType).send(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength))
}

/** `GET` of the image in `slot` of the entity `id`: its bytes, 304 when `If-None-Match` holds it, 404 (`missing`) when there is none. */
export async function serveImage (db: Executor, slot: FileSlot, id: string, request: FastifyRequest, reply: FastifyReply, missing: string): Promise<FastifyReply> {
  const image = await findAttachedFile(db, slot, id, knownTags(request.headers['if-none-match']))
  if (image === undefined) throw notFound(missing)
  return sendImage(reply, image)
}

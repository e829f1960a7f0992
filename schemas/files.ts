import { Type } from '@sinclair/typebox'
import { Ref, StrictObject } from './common.js'
import { entityHeaders } from './http.js'

/** The image types an upload may hold, recognised by their bytes. */
export const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif'] as const
export type ImageType = typeof IMAGE_TYPES[number]

/** The multipart form of an upload: one part, `file`. Documentation only: the handler reads it as a stream. */
export const ImageUploadSchema = StrictObject({
  file: Type.String({
    format: 'binary',
    description: 'A JPEG, PNG, WebP or GIF image, recognised by its bytes (not its name or declared type); ' +
      'at most `UPLOAD_MAX_BYTES` (5 MiB by default)'
  })
}, {
  $id: 'ImageUpload',
  title: 'ImageUpload',
  description: '`multipart/form-data` with exactly one part, named `file`.'
})

export const uploadBody = {
  description: 'The image, as the `file` part of a `multipart/form-data` body',
  content: { 'multipart/form-data': { schema: Ref(ImageUploadSchema) } }
}

const binary = { type: 'string', format: 'binary' } as const

export const image = entityHeaders('image', '"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"',
  { etag: 'Strong validator derived from the SHA-256 of the bytes; send it as `If-None-Match`' })

const imageCache = {
  'Cache-Control': { type: 'string', maxLength: 100, description: '`public, no-cache`: caches keep the image but revalidate it, since a replaced image keeps its URL' }
}

/** The answers of an image download: its bytes, or 304. */
export const imageResponses = (what: string) => ({
  200: {
    description: `The ${what}, byte for byte, with the content type recognised at upload`,
    headers: { ...image.etag, ...imageCache, 'Content-Length': { type: 'integer', minimum: 0, description: 'The size of the image in bytes' } },
    content: Object.fromEntries(IMAGE_TYPES.map((type) => [type, { schema: binary }]))
  },
  304: image.notModified(imageCache)
} as const)

export const errorsOfUploads = 'A body that is not `multipart/form-data` is 415, and so is a file that is not a JPEG, PNG, WebP or GIF image; ' +
  'a file over the size limit is 413; a body without a `file` part, or with other parts, is 400.'

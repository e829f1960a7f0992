import { Type } from '@sinclair/typebox'
import { EntityTagsHeader, etagHeader, IdParamsSchema, notModified, problems, Ref, requires, StrictObject } from './common.js'
import { ItemSchema } from './items.js'
import { UserSchema } from './users.js'

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

export const filesComponents = [ImageUploadSchema]

const uploadBody = {
  description: 'The image, as the `file` part of a `multipart/form-data` body',
  content: { 'multipart/form-data': { schema: Ref(ImageUploadSchema) } }
}

const binary = { type: 'string', format: 'binary' } as const
const imageHeaders = {
  ...etagHeader('Strong validator derived from the SHA-256 of the bytes; send it as `If-None-Match`'),
  'Cache-Control': { type: 'string', maxLength: 100, description: '`public, no-cache`: caches keep the image but revalidate it, since a replaced image keeps its URL' },
  'Content-Length': { type: 'integer', minimum: 0, description: 'The size of the image in bytes' }
}

const IfNoneMatchHeaders = Type.Object({
  'If-None-Match': EntityTagsHeader('Answer 304 without a body when the image\'s current `ETag` is one of these (weak comparison), or for `*`', '"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"')
})

const imageResponses = (what: string) => ({
  200: {
    description: `The ${what}, byte for byte, with the content type recognised at upload`,
    headers: imageHeaders,
    content: Object.fromEntries(IMAGE_TYPES.map((type) => [type, { schema: binary }]))
  },
  304: notModified('Not modified: `If-None-Match` matches the current `ETag`', { ETag: imageHeaders.ETag, 'Cache-Control': imageHeaders['Cache-Control'] })
} as const)

const IfMatchHeaders = Type.Object({
  'If-Match': EntityTagsHeader('Change only if the item\'s current `ETag` is one of these (strong comparison), or `*` for any; otherwise 412', '"0196f1c2-7a8b-7cde-8f01-23456789abcd.3"')
})

const itemEtag = etagHeader('The strong entity tag of the updated item')

const errorsOfUploads = 'A body that is not `multipart/form-data` is 415, and so is a file that is not a JPEG, PNG, WebP or GIF image; ' +
  'a file over the size limit is 413; a body without a `file` part, or with other parts, is 400.'

export const uploadItemImage = {
  operationId: 'uploadItemImage',
  tags: ['items'],
  summary: 'Set an item\'s image',
  description: 'Stores the image and makes it the item\'s, replacing (and deleting) any previous one. ' +
    'The item\'s owner (`items:write`) or an admin may do this; another user\'s item is 403. ' +
    'This changes the item: its `version` goes up, and so its `ETag` changes; send the `ETag` you hold as `If-Match` to ' +
    'refuse (412) overwriting another change. ' + errorsOfUploads,
  security: requires(['items:write'], ['admin']),
  params: IdParamsSchema,
  headers: IfMatchHeaders,
  body: uploadBody,
  response: {
    200: { description: 'The item, with its new `imageUrl` and `version`', headers: itemEtag, content: { 'application/json': { schema: Ref(ItemSchema) } } },
    ...problems(400, 403, 404, 412, 413, 415)
  }
} as const

export const getItemImage = {
  operationId: 'getItemImage',
  tags: ['items'],
  summary: 'Get an item\'s image',
  description: 'The image bytes as uploaded, with the content type recognised from them. ' +
    'Send the `ETag` back as `If-None-Match` to get 304 when it has not changed. 404 when the item does not exist or has no image.',
  params: IdParamsSchema,
  headers: IfNoneMatchHeaders,
  response: { ...imageResponses('image'), ...problems(400, 404) }
} as const

export const uploadAvatar = {
  operationId: 'uploadAvatar',
  tags: ['users'],
  summary: 'Set your avatar',
  description: 'Stores the image as your avatar, replacing (and deleting) any previous one; your `avatarUrl` then points at it. ' + errorsOfUploads,
  security: requires(['profile']),
  body: uploadBody,
  response: {
    200: { description: 'Your account, with its `avatarUrl`', headers: etagHeader('Strong entity tag of this version of the account'), content: { 'application/json': { schema: Ref(UserSchema) } } },
    ...problems(400, 403, 413, 415)
  }
} as const

export const getUserAvatar = {
  operationId: 'getUserAvatar',
  tags: ['users'],
  summary: 'Get a user\'s avatar',
  description: 'The avatar bytes as uploaded, with the content type recognised from them (what `avatarUrl` points at). ' +
    'Send the `ETag` back as `If-None-Match` to get 304 when it has not changed. 404 when the user does not exist or has no avatar.',
  params: IdParamsSchema,
  headers: IfNoneMatchHeaders,
  response: { ...imageResponses('avatar'), ...problems(400, 404) }
} as const

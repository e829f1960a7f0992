import multipart from '@fastify/multipart'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { filesComponents, getItemImage, getUserAvatar, uploadAvatar, uploadItemImage } from '../../schemas/files.js'
import { ItemSchema } from '../../schemas/items.js'
import { UserSchema } from '../../schemas/users.js'
import type { Config } from '../config.js'
import { findItemById, itemEtag, toItem } from '../items/repository.js'
import { ifMatchHolds } from '../lib/conditional.js'
import { assertOwnerOrAdmin } from '../kit/ownership.js'
import { addMissingSchemas } from '../lib/schemas.js'
import { accountGone, HttpProblem, notFound } from '../lib/problem.js'
import { currentPrincipal } from '../auth/plugin.js'
import { toUser, userEtag } from '../users/repository.js'
import * as repository from './repository.js'
import { requireMultipart, streamedBodyValidator, uploadLimits } from '../lib/multipart.js'
import { readImageUpload } from './upload.js'

/** Caches may keep an image but must revalidate it: a replaced image keeps its URL, and a 304 is cheap. */
const IMAGE_CACHE_CONTROL = 'public, no-cache'
const SHA256_HEX = /^[0-9a-f]{64}$/

const preconditionFailed = () =>
  new HttpProblem(412, 'The item has changed since the version named in If-Match: fetch it again', { code: 'precondition-failed' })

/** The hashes an `If-None-Match` header lists (weak or strong, as RFC 9110 compares them for GET), or `*`. */
function knownTags (header: string | undefined): repository.KnownTags {
  if (header === undefined) return []
  if (header.trim() === '*') return '*'
  return header.split(',')
    .map((tag) => tag.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1'))
    .filter((hash) => SHA256_HEX.test(hash))
    .slice(0, 50)
}

function sendImage (reply: FastifyReply, image: repository.StoredImage): FastifyReply {
  reply.header('etag', `"${image.sha256}"`).header('cache-control', IMAGE_CACHE_CONTROL)
    // Images are public: pages on other sites (a frontend listed in CORS_ORIGINS, say) may embed them.
    .header('cross-origin-resource-policy', 'cross-origin')
  if (image.data === null) return reply.code(304).send()
  // PGlite hands bytea over as a Uint8Array, node-postgres as a Buffer: a view, not a copy.
  return reply.type(image.contentType).send(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength))
}

/** Image uploads (item images, avatars) and serving them. Multipart bodies are accepted on these routes only. */
const files: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  addMissingSchemas(app, [...filesComponents, ItemSchema, UserSchema])
  await app.register(multipart, { limits: uploadLimits(config.UPLOAD_MAX_BYTES) })
  const upload = { preParsing: requireMultipart, validatorCompiler: streamedBodyValidator() }

  app.put('/api/v1/items/:id/image', { schema: uploadItemImage, ...upload }, async (request, reply) => {
    const item = await findItemById(app.db, request.params.id)
    if (item === undefined) throw notFound('No item has this id')
    assertOwnerOrAdmin(currentPrincipal(request), item.ownerId, 'items:write')
    const ifMatch = request.headers['if-match']
    // Refused before the upload is read when it already fails; checked again where it counts, under the row lock.
    if (!ifMatchHolds(ifMatch, itemEtag(item))) throw preconditionFailed()
    const image = await readImageUpload(request, config.UPLOAD_MAX_BYTES)
    const row = await repository.setItemImage(app.db, item.id, image, ifMatch)
    if (row === undefined) throw notFound('No item has this id')
    if (row === 'precondition-failed') throw preconditionFailed()
    return reply.header('etag', itemEtag(row)).send(toItem(row))
  })

  app.get('/api/v1/items/:id/image', { schema: getItemImage }, async (request, reply) => {
    const image = await repository.findItemImage(app.db, request.params.id, knownTags(request.headers['if-none-match']))
    if (image === undefined) throw notFound('This item does not exist or has no image')
    return sendImage(reply, image)
  })

  app.put('/api/v1/users/me/avatar', { schema: uploadAvatar, ...upload }, async (request, reply) => {
    const { id } = currentPrincipal(request)
    const image = await readImageUpload(request, config.UPLOAD_MAX_BYTES)
    const row = await repository.setAvatar(app.db, id, image)
    // The token was checked against an existing user moments ago; it may have been deleted since.
    if (row === undefined) throw accountGone()
    reply.header('etag', userEtag(row))
    return toUser(row)
  })

  app.get('/api/v1/users/:id/avatar', { schema: getUserAvatar }, async (request, reply) => {
    const image = await repository.findAvatar(app.db, request.params.id, knownTags(request.headers['if-none-match']))
    if (image === undefined) throw notFound('This user does not exist or has no avatar')
    return sendImage(reply, image)
  })
}

export default files

import type { FastifyRequest } from 'fastify'
import {
  createItem, deleteItem, getItem, getItemImage, listItems, replaceItem, updateItem, uploadItemImage, type ItemUpdate
} from '../../schemas/items.js'
import type { ResourceOptions } from '../kit/resource.js'
import { found, sendCreated, sendEntity, sendPage } from '../kit/responses.js'
import { mergePatchRoutes, uploadRoutes } from '../kit/scopes.js'
import { conditionalWrites } from '../kit/write.js'
import { CursorCodec } from '../lib/pagination.js'
import { invalidRequest } from '../lib/problem.js'
import { currentPrincipal } from '../auth/plugin.js'
import { readImageUpload, serveImage } from '../storage/images.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import * as repository from './repository.js'

/** RFC 7396 merge of a patch into the current state: absent keeps, null clears `description`, and null `tags` means none. */
const merge = (row: repository.ItemRow, patch: ItemUpdate): repository.ItemValues => ({
  name: patch.name ?? row.name,
  description: patch.description === undefined ? row.description : patch.description,
  price: patch.price ?? Number(row.price),
  tags: patch.tags === undefined ? row.tags : patch.tags ?? []
})

const sendItem = (request: FastifyRequest, reply: Parameters<typeof sendEntity>[1], row: repository.ItemRow) =>
  sendEntity(request, reply, repository.itemEtag(row), repository.toItem(row))

/** The catalog: item CRUD with ETags and conditional writes, the filtered, keyset-paginated list, and item images. */
const items: FastifyPluginAsyncTypebox<ResourceOptions> = async (app, { config }) => {
  const cursors = new CursorCodec(app.deriveKey('cursor'))
  // Its owner (`items:write`) or an admin, at the version `If-Match` names.
  const writeItem = conditionalWrites('item', 'items:write', async (id: string) => await repository.findItemById(app.db, id), repository.itemEtag)

  app.post('/items', { schema: createItem, config: { idempotency: true } }, async (request, reply) => {
    const row = await repository.insertItem(app.db, currentPrincipal(request).id, request.body)
    return sendCreated(reply, repository.itemUrl(row.id), repository.itemEtag(row), repository.toItem(row))
  })

  app.get('/items', { schema: listItems }, async (request, reply) => {
    const { limit, cursor, sort, q, tag, ownerId, minPrice, maxPrice } = request.query
    if (minPrice !== undefined && maxPrice !== undefined && minPrice > maxPrice) {
      throw invalidRequest([{ in: 'query', path: '/minPrice', message: 'must not be greater than maxPrice' }])
    }
    const page = await repository.listItems(app.db, cursors, { sort, limit, cursor, filters: { q, tags: tag, ownerId, minPrice, maxPrice } })
    return sendPage(request, reply, page, repository.toItem)
  })

  app.get('/items/:id', { schema: getItem }, async (request, reply) => {
    return sendItem(request, reply, found(await repository.findItemById(app.db, request.params.id), 'No item has this id'))
  })

  app.put('/items/:id', { schema: replaceItem }, async (request, reply) => {
    const { name, description = null, price, tags = [] } = request.body
    const row = await writeItem(request, request.params.id, (current) =>
      repository.updateItemAtVersion(app.db, current.id, current.version, { name, description, price, tags }))
    return sendItem(request, reply, row)
  })

  await mergePatchRoutes(app, (patches) => {
    patches.patch('/items/:id', { schema: updateItem }, async (request, reply) => {
      const row = await writeItem(request, request.params.id, (current) =>
        repository.updateItemAtVersion(app.db, current.id, current.version, merge(current, request.body)))
      return sendItem(request, reply, row)
    })
  })

  app.delete('/items/:id', { schema: deleteItem }, async (request, reply) => {
    await writeItem(request, request.params.id, async (current) =>
      (await repository.deleteItemAtVersion(app.db, current.id, current.version)) ? true : undefined)
    return reply.code(204).send()
  })

  await uploadRoutes(app, config.UPLOAD_MAX_BYTES, (uploads, upload) => {
    uploads.put('/items/:id/image', { schema: uploadItemImage, ...upload }, async (request, reply) => {
      // The upload is read once the caller may write the item at the version named, so a refusal costs no upload.
      const image = await writeItem(request, request.params.id, () => readImageUpload(request, config.UPLOAD_MAX_BYTES))
      const row = await writeItem(request, request.params.id, (current) => repository.setItemImageAtVersion(app.db, current, image))
      return sendItem(request, reply, row)
    })
  })

  app.get('/items/:id/image', { schema: getItemImage }, async (request, reply) =>
    await serveImage(app.db, repository.itemImage, request.params.id, request, reply, 'This item does not exist or has no image'))
}

export default items

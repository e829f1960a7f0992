import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest, onRequestHookHandler } from 'fastify'
import {
  createItem, deleteItem, getItem, itemsComponents, listItems, MERGE_PATCH_TYPES, replaceItem, updateItem, type ItemUpdate
} from '../../schemas/items.js'
import type { Executor } from '../db/client.js'
import { strictJsonParser } from '../lib/json-body.js'
import { assertOwnerOrAdmin } from '../kit/ownership.js'
import { CursorCodec, nextLink } from '../lib/pagination.js'
import { conflict, HttpProblem, invalidRequest, notFound, unsupportedMediaType } from '../lib/problem.js'
import { currentPrincipal } from '../auth/plugin.js'
import { ifMatchHolds, ifNoneMatchFails } from '../lib/conditional.js'
import * as repository from './repository.js'

/** A write racing this many others in a row gives up with a 409 rather than retrying forever. */
const WRITE_ATTEMPTS = 5

const preconditionFailed = () =>
  new HttpProblem(412, 'The item has changed since the version named in If-Match: fetch it again', { code: 'precondition-failed' })

/**
 * The Content-Type check of a route: its plugin context parses JSON merge patches for PATCH, which
 * must not make POST and PUT accept them. Runs before the body is read.
 */
const accepting = (mediaTypes: string[]): onRequestHookHandler => (request, _reply, done) => {
  const header = request.headers['content-type']
  const essence = header === undefined ? undefined : (header.split(';')[0] ?? '').trim().toLowerCase()
  if (essence !== undefined && !mediaTypes.includes(essence)) {
    throw unsupportedMediaType(`This operation accepts ${mediaTypes.join(' or ')}, not ${essence}`)
  }
  done()
}

/**
 * Changes an item the caller may write, if `If-Match` allows. `write` is guarded by the version it was
 * given and returns undefined when another write landed first; the item is then read and checked again.
 */
async function changeItem<T> (
  db: Executor,
  request: FastifyRequest,
  id: string,
  write: (row: repository.ItemRow) => Promise<T | undefined>
): Promise<T> {
  const ifMatch = request.headers['if-match']
  for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
    const row = await repository.findItemById(db, id)
    if (row === undefined) throw notFound('No item has this id')
    assertOwnerOrAdmin(currentPrincipal(request), row.ownerId, 'items:write')
    if (!ifMatchHolds(ifMatch, repository.itemEtag(row))) throw preconditionFailed()
    const result = await write(row)
    if (result !== undefined) return result
  }
  throw conflict('The item is changing too often to apply this change: retry', { code: 'edit-conflict' })
}

/** RFC 7396 merge of a patch into the current state: absent keeps, null clears `description`, and null `tags` means none. */
const merge = (row: repository.ItemRow, patch: ItemUpdate): repository.ItemValues => ({
  name: patch.name ?? row.name,
  description: patch.description === undefined ? row.description : patch.description,
  price: patch.price ?? Number(row.price),
  tags: patch.tags === undefined ? row.tags : patch.tags ?? []
})

/** The catalog: item CRUD with ETags and conditional writes, and the filtered, keyset-paginated list. */
const items: FastifyPluginAsyncTypebox = async (app) => {
  for (const schema of itemsComponents) app.addSchema(schema)
  // Parsed like application/json (UTF-8 checked); only PATCH accepts it.
  app.addContentTypeParser('application/merge-patch+json', { parseAs: 'buffer' }, strictJsonParser(app))
  const json = accepting(['application/json'])
  const cursors = new CursorCodec(app.deriveKey('cursor'))

  app.post('/api/v1/items', { schema: createItem, onRequest: json, config: { idempotency: true } }, async (request, reply) => {
    const row = await repository.insertItem(app.db, currentPrincipal(request).id, request.body)
    return reply.code(201).header('location', repository.itemUrl(row.id)).header('etag', repository.itemEtag(row)).send(repository.toItem(row))
  })

  app.get('/api/v1/items', { schema: listItems }, async (request, reply) => {
    const { limit, cursor, sort, q, tag, ownerId, minPrice, maxPrice } = request.query
    if (minPrice !== undefined && maxPrice !== undefined && minPrice > maxPrice) {
      throw invalidRequest([{ in: 'query', path: '/minPrice', message: 'must not be greater than maxPrice' }])
    }
    const page = await repository.listItems(app.db, cursors, { sort, limit, cursor, filters: { q, tags: tag, ownerId, minPrice, maxPrice } })
    if (page.nextCursor !== null) reply.header('link', nextLink(request.url, page.nextCursor))
    return { data: page.data.map(repository.toItem), nextCursor: page.nextCursor }
  })

  app.get('/api/v1/items/:id', { schema: getItem }, async (request, reply) => {
    const row = await repository.findItemById(app.db, request.params.id)
    if (row === undefined) throw notFound('No item has this id')
    const etag = repository.itemEtag(row)
    reply.header('etag', etag)
    if (ifNoneMatchFails(request.headers['if-none-match'], etag)) return reply.code(304).send()
    return repository.toItem(row)
  })

  app.put('/api/v1/items/:id', { schema: replaceItem, onRequest: json }, async (request, reply) => {
    const { name, description = null, price, tags = [] } = request.body
    const row = await changeItem(app.db, request, request.params.id, (current) =>
      repository.updateItemAtVersion(app.db, current.id, current.version, { name, description, price, tags }))
    return reply.header('etag', repository.itemEtag(row)).send(repository.toItem(row))
  })

  app.patch('/api/v1/items/:id', { schema: updateItem, onRequest: accepting(MERGE_PATCH_TYPES) }, async (request, reply) => {
    const row = await changeItem(app.db, request, request.params.id, (current) =>
      repository.updateItemAtVersion(app.db, current.id, current.version, merge(current, request.body)))
    return reply.header('etag', repository.itemEtag(row)).send(repository.toItem(row))
  })

  app.delete('/api/v1/items/:id', { schema: deleteItem }, async (request, reply) => {
    await changeItem(app.db, request, request.params.id, async (current) =>
      (await repository.deleteItemAtVersion(app.db, current.id, current.version)) ? true : undefined)
    return reply.code(204).send()
  })
}

export default items

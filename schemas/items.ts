import { Type, type Static } from '@sinclair/typebox'
import { DateTime, Defaulted, defineResource, IdParamsSchema, Nullable, Page, PaginationQuery, problems, Ref, requires, StrictObject, Uuid } from './common.js'
import { errorsOfUploads, image, imageResponses, ImageUploadSchema, uploadBody } from './files.js'
import { entityHeaders, noContent, pageResponse } from './http.js'

const Name = Type.String({ minLength: 1, maxLength: 200, description: 'Display name, 1 to 200 characters', examples: ['Walnut desk'] })
const Description = Nullable(Type.String({ maxLength: 5000, description: 'Free text up to 5,000 characters; null when none', examples: ['Solid walnut, 140 × 70 cm.'] }))
/**
 * Money: a JSON number with at most 2 decimals, stored exactly as Postgres `numeric(12,2)`. The server checks the
 * decimals exactly (`decimals`, our keyword); the published documents say it in words (see the README on prices).
 */
const Price = Type.Number({ minimum: 0, maximum: 1_000_000_000, decimals: 2, description: 'Price with at most 2 decimals, from 0 to 1,000,000,000', examples: [24.99] })
const Tags = Type.Array(Type.String({ minLength: 1, maxLength: 40 }), { maxItems: 20, uniqueItems: true, description: 'Up to 20 distinct tags of 1 to 40 characters', examples: [['furniture', 'walnut']] })

export const ItemSchema = StrictObject({
  id: Uuid({ examples: ['0196f1c2-7a8b-7cde-8f01-23456789abcd'] }),
  ownerId: Uuid({ description: 'The user who created the item' }),
  name: Name,
  description: Description,
  price: Price,
  tags: Tags,
  imageUrl: Nullable(Type.String({ maxLength: 2000, description: 'Where the image is served, if the item has one' })),
  version: Type.Integer({ minimum: 1, description: 'Incremented by every change; the `ETag` derives from it' }),
  createdAt: DateTime(),
  updatedAt: DateTime()
}, {
  $id: 'Item',
  title: 'Item',
  description: 'A catalog item.',
  examples: [{
    id: '0196f1c2-7a8b-7cde-8f01-23456789abcd',
    ownerId: '0196f1c2-0000-7cde-8f01-23456789abcd',
    name: 'Walnut desk',
    description: 'Solid walnut, 140 × 70 cm.',
    price: 24.99,
    tags: ['furniture', 'walnut'],
    imageUrl: null,
    version: 1,
    createdAt: '2025-05-01T12:00:00.000Z',
    updatedAt: '2025-05-01T12:00:00.000Z'
  }]
})

export const ItemCreateSchema = StrictObject({
  name: Name,
  description: Type.Optional(Description),
  price: Price,
  tags: Type.Optional(Tags)
}, {
  $id: 'ItemCreate',
  title: 'ItemCreate',
  description: 'A new item: `description` defaults to null and `tags` to none.',
  examples: [{ name: 'Walnut desk', description: 'Solid walnut, 140 × 70 cm.', price: 24.99, tags: ['furniture', 'walnut'] }]
})

export const ItemReplaceSchema = StrictObject({
  name: Name,
  description: Type.Optional(Description),
  price: Price,
  tags: Type.Optional(Tags)
}, {
  $id: 'ItemReplace',
  title: 'ItemReplace',
  description: 'The whole new state of an item: an absent `description` becomes null and absent `tags` none.',
  examples: [{ name: 'Walnut desk', description: 'Solid walnut, 160 × 80 cm.', price: 24.5, tags: ['furniture'] }]
})

export const ItemUpdateSchema = StrictObject({
  name: Type.Optional(Name),
  description: Type.Optional(Description),
  price: Type.Optional(Price),
  tags: Type.Optional(Nullable(Tags))
}, {
  $id: 'ItemUpdate',
  title: 'ItemUpdate',
  description: 'A JSON merge patch (RFC 7396): absent fields keep their value, a null `description` clears it and a null `tags` ' +
    'clears the tags (as `[]`). `name` and `price` cannot be null.',
  examples: [{ price: 17.5, description: null }]
})

export const ItemPageSchema = Page(ItemSchema)

export const ItemDeletedSchema = StrictObject({
  id: Uuid({ description: 'The id of the deleted item', examples: ['0196f1c2-7a8b-7cde-8f01-23456789abcd'] })
}, {
  $id: 'ItemDeleted',
  title: 'ItemDeleted',
  description: 'What an `item.deleted` event carries: the item is gone, only its id is left.'
})

export const ITEM_SORT_FIELDS = ['name', 'price', 'createdAt', 'updatedAt'] as const
const sortKey = `-?(?:${ITEM_SORT_FIELDS.join('|')})`
const PriceBound = (description: string) => Type.Number({ minimum: 0, maximum: 1_000_000_000, decimals: 2, description: `${description}; at most 2 decimals` })

export const ItemListQuerySchema = StrictObject({
  ...PaginationQuery,
  sort: Defaulted(Type.String({
    pattern: `^${sortKey}(?:,${sortKey}){0,3}$`,
    maxLength: 100,
    default: '-createdAt',
    description: 'Comma list of `name`, `price`, `createdAt`, `updatedAt`, each optionally prefixed `-` for descending. The id breaks ties.',
    examples: ['-createdAt', 'price,-name']
  })),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Full-text search over name and description, with English stemming and web search syntax (`"exact phrase"`, `or`, `-word`)', examples: ['walnut desk'] })),
  tag: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 40 }), { maxItems: 20, description: 'Only items carrying every tag given; repeat the parameter for several', examples: [['furniture']] })),
  ownerId: Type.Optional(Uuid({ description: 'Only the items of this user' })),
  minPrice: Type.Optional(PriceBound('Only items costing at least this much')),
  maxPrice: Type.Optional(PriceBound('Only items costing at most this much; not below `minPrice`'))
})

export type Item = Static<typeof ItemSchema>
export type ItemCreate = Static<typeof ItemCreateSchema>
export type ItemReplace = Static<typeof ItemReplaceSchema>
export type ItemUpdate = Static<typeof ItemUpdateSchema>
export type ItemListQuery = Static<typeof ItemListQuerySchema>

export const itemsResource = defineResource({
  tag: { name: 'items', description: 'The catalog: items, their images, search and imports' },
  components: [ItemSchema, ItemCreateSchema, ItemReplaceSchema, ItemUpdateSchema, ItemPageSchema, ImageUploadSchema],
  scopes: { 'items:write': { description: 'Create, change and delete your items, run imports and read their jobs', byDefault: true } }
})

/** The media types `updateItem` accepts: plain JSON and RFC 7396's own, with the same merge semantics. */
export const MERGE_PATCH_TYPES = ['application/json', 'application/merge-patch+json']

export const item = entityHeaders('item', '"0196f1c2-7a8b-7cde-8f01-23456789abcd.3"', { writable: true })

export const createItem = {
  operationId: 'createItem',
  tags: ['items'],
  summary: 'Create an item',
  description: 'Creates an item owned by the caller. Send an `Idempotency-Key` to make retries safe: a repeat with the same key and body ' +
    'replays the first response instead of creating a second item.',
  security: requires(['items:write']),
  body: Ref(ItemCreateSchema),
  response: {
    201: item.created('The new item', ItemSchema),
    ...problems(403)
  }
} as const

export const listItems = {
  operationId: 'listItems',
  tags: ['items'],
  summary: 'List and search items',
  description: 'A page of items, filtered, searched and sorted (newest first by default). Pass `nextCursor` as `cursor`, with the same ' +
    'filters and sort, for the next page; the `Link` header carries the same as a ready URL. A cursor of other filters or sort is 400.',
  querystring: ItemListQuerySchema,
  response: {
    200: pageResponse('A page of items', ItemPageSchema)
  }
} as const

export const getItem = {
  operationId: 'getItem',
  tags: ['items'],
  summary: 'Get an item',
  description: 'One item, with its `ETag`. With `If-None-Match` naming the current version the answer is 304 without a body.',
  params: IdParamsSchema,
  headers: item.ifNoneMatch,
  response: {
    200: item.ok('The item', ItemSchema),
    304: item.notModified(),
    ...problems(404)
  }
} as const

export const replaceItem = {
  operationId: 'replaceItem',
  tags: ['items'],
  summary: 'Replace an item',
  description: 'Replaces every field of an item; absent optional fields are cleared. Only its owner (`items:write`) or an admin may. ' +
    'With `If-Match`, the change happens only if that version is still current (412 otherwise).',
  security: requires(['items:write'], ['admin']),
  params: IdParamsSchema,
  headers: item.ifMatch,
  body: Ref(ItemReplaceSchema),
  response: { 200: item.ok('The replaced item', ItemSchema), ...problems(403, 404, 409, 412) }
} as const

export const updateItem = {
  operationId: 'updateItem',
  tags: ['items'],
  summary: 'Change an item',
  description: 'Applies a JSON merge patch (RFC 7396), sent as `application/merge-patch+json` or `application/json`: absent fields keep ' +
    'their value, null clears `description`, and null `tags` clears them. Only its owner (`items:write`) or an admin may. ' +
    'With `If-Match`, the change happens only if that version is still current (412 otherwise).',
  security: requires(['items:write'], ['admin']),
  params: IdParamsSchema,
  headers: item.ifMatch,
  consumes: MERGE_PATCH_TYPES,
  body: Ref(ItemUpdateSchema),
  response: { 200: item.ok('The changed item', ItemSchema), ...problems(403, 404, 409, 412) }
} as const

export const deleteItem = {
  operationId: 'deleteItem',
  tags: ['items'],
  summary: 'Delete an item',
  description: 'Deletes an item and its image. Only its owner (`items:write`) or an admin may. ' +
    'With `If-Match`, the deletion happens only if that version is still current (412 otherwise).',
  security: requires(['items:write'], ['admin']),
  params: IdParamsSchema,
  headers: item.ifMatch,
  response: { 204: noContent('Deleted'), ...problems(403, 404, 409, 412) }
} as const

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
  headers: item.ifMatch,
  body: uploadBody,
  response: {
    200: item.ok('The item, with its new `imageUrl` and `version`', ItemSchema),
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
  headers: image.ifNoneMatch,
  response: { ...imageResponses('image'), ...problems(400, 404) }
} as const

import { Type, type Static } from '@sinclair/typebox'
import { DateTime, Nullable, StrictObject, Uuid } from './common.js'

const Name = Type.String({ minLength: 1, maxLength: 200, description: 'Display name, 1 to 200 characters', examples: ['Walnut desk'] })
const Description = Nullable(Type.String({ maxLength: 5000, description: 'Free text up to 5,000 characters; null when none', examples: ['Solid walnut, 140 × 70 cm.'] }))
/** Money: a JSON number with at most 2 decimals, stored exactly as Postgres `numeric(12,2)`. */
const Price = Type.Number({ minimum: 0, maximum: 1_000_000_000, multipleOf: 0.01, description: 'Price with at most 2 decimals, from 0 to 1,000,000,000', examples: [19.99] })
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
    price: 19.99,
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
  examples: [{ name: 'Walnut desk', description: 'Solid walnut, 140 × 70 cm.', price: 19.99, tags: ['furniture', 'walnut'] }]
})

export type Item = Static<typeof ItemSchema>
export type ItemCreate = Static<typeof ItemCreateSchema>

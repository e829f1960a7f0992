import { eq } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import type { Item, ItemCreate } from '../../schemas/items.js'
import type { Executor } from '../db/client.js'
import { items } from '../db/schema.js'

export type ItemRow = Omit<typeof items.$inferSelect, 'search'>

/** Every column but the full-text document, which stays inside the database. */
export const itemColumns = {
  id: items.id,
  ownerId: items.ownerId,
  name: items.name,
  description: items.description,
  price: items.price,
  tags: items.tags,
  imageFileId: items.imageFileId,
  version: items.version,
  createdAt: items.createdAt,
  updatedAt: items.updatedAt
}

export const itemUrl = (id: string) => `/api/v1/items/${id}`

/** The API view of a row. `numeric` arrives as a string ("19.99"), which reads back as the exact JSON number. */
export const toItem = (row: ItemRow): Item => ({
  id: row.id,
  ownerId: row.ownerId,
  name: row.name,
  description: row.description,
  price: Number(row.price),
  tags: row.tags,
  imageUrl: row.imageFileId === null ? null : `${itemUrl(row.id)}/image`,
  version: row.version,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString()
})

/** A strong ETag from the version: it changes with every write. */
export const itemEtag = (row: Pick<ItemRow, 'id' | 'version'>) => `"${row.id}.${row.version}"`

/** Money to the exact decimal text Postgres stores (prices are validated to at most 2 decimals). */
export const priceText = (price: number) => price.toFixed(2)

export async function insertItem (db: Executor, ownerId: string, input: ItemCreate): Promise<ItemRow> {
  const [row] = await db.insert(items).values({
    id: uuidv7(),
    ownerId,
    name: input.name,
    description: input.description ?? null,
    price: priceText(input.price),
    tags: input.tags ?? []
  }).returning(itemColumns)
  if (row === undefined) throw new Error('insert returned no row')
  return row
}

export async function findItemById (db: Executor, id: string): Promise<ItemRow | undefined> {
  const [row] = await db.select(itemColumns).from(items).where(eq(items.id, id))
  return row
}

import { and, eq, gte, lte, sql, type SQL } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import { API_PREFIX } from '../../schemas/common.js'
import type { Item, ItemCreate, ItemReplace } from '../../schemas/items.js'
import type { Executor } from '../db/client.js'
import { items } from '../db/schema.js'
import { preparedSelect } from '../db/statements.js'
import { entityTag } from '../kit/responses.js'
import { pageQuery, paginate, sortParser, type CursorCodec, type KeysetPage, type PageRequest, type SortKey } from '../lib/pagination.js'
import { emit, emitting, newEvent, withEvents, type NewEvent } from '../realtime/outbox.js'
import { deleteFile, replaceFile, type FileSlot } from '../storage/files.js'
import type { Image } from '../storage/images.js'

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

export const itemUrl = (id: string) => `${API_PREFIX}/items/${id}`

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
  createdAt: row.createdAt,
  updatedAt: row.updatedAt
})

export const itemEtag = (row: Pick<ItemRow, 'id' | 'version'>) => entityTag(row.id, row.version)

/** Money to the exact decimal text Postgres stores (prices are validated to at most 2 decimals). */
const priceText = (price: number) => price.toFixed(2)

/** Items' events are public, on the topic `items`. */
export const itemChanged = (name: 'item.created' | 'item.updated', row: ItemRow): NewEvent => newEvent(name, 'items', toItem(row))
const itemDeleted = (id: string): NewEvent => newEvent('item.deleted', 'items', { id })

/** Inserts the items of the JSON array `$1` of rows (from `newItems`) and stores their events `$2`, in one statement. */
export const INSERT_ITEMS = withEvents(`
  insert into items (id, owner_id, name, description, price, tags, created_at, updated_at)
  select r.id, r."ownerId", r.name, r.description, r.price, r.tags, r."createdAt", r."createdAt"
  from jsonb_to_recordset($1::jsonb) as r(id uuid, "ownerId" uuid, name text, description text, price numeric, tags text[], "createdAt" timestamptz)`)

/** The rows of new items: every value is known before they are stored (a new id, version 1, no image, this moment). */
export function newItems (ownerId: string, inputs: ItemCreate[]): ItemRow[] {
  const now = new Date().toISOString()
  return inputs.map((input) => ({
    id: uuidv7(),
    ownerId,
    name: input.name,
    description: input.description ?? null,
    price: priceText(input.price),
    tags: input.tags ?? [],
    imageFileId: null,
    version: 1,
    createdAt: now,
    updatedAt: now
  }))
}

/** Creates items and their `item.created` events in one statement: one round trip, in the caller's transaction if any. */
export async function insertItems (db: Executor, ownerId: string, inputs: ItemCreate[]): Promise<ItemRow[]> {
  if (inputs.length === 0) return []
  const rows = newItems(ownerId, inputs)
  await emitting(db, 'items.insert', INSERT_ITEMS, JSON.stringify(rows), rows.map((row) => itemChanged('item.created', row)))
  return rows
}

export async function insertItem (db: Executor, ownerId: string, input: ItemCreate): Promise<ItemRow> {
  const [row] = await insertItems(db, ownerId, [input])
  if (row === undefined) throw new Error('insert returned no row')
  return row
}

export async function findItemById (db: Executor, id: string): Promise<ItemRow | undefined> {
  const [row] = await preparedSelect(db, 'items.by_id', itemColumns, (executor) =>
    executor.select(itemColumns).from(items).where(eq(items.id, sql.placeholder('id')))
  ).execute({ id })
  return row
}

/** The whole writable state of an item, as a replace or a merged patch produces it. */
export type ItemValues = Required<ItemReplace>

/**
 * Writes `values` if the item is still at `version`, incrementing the version and `updatedAt`. The version
 * check and the write are one statement, so no concurrent writer slips in between; undefined when the item
 * changed or went away since it was read.
 */
export async function updateItemAtVersion (db: Executor, id: string, version: number, values: ItemValues): Promise<ItemRow | undefined> {
  return await db.transaction(async (tx) => {
    const [row] = await tx.update(items).set({
      name: values.name,
      description: values.description,
      price: priceText(values.price),
      tags: values.tags,
      version: sql`${items.version} + 1`,
      updatedAt: new Date().toISOString()
    }).where(and(eq(items.id, id), eq(items.version, version))).returning(itemColumns)
    if (row !== undefined) await emit(tx, itemChanged('item.updated', row))
    return row
  })
}

/** Deletes the item if it is still at `version`, and its image with it; false when it changed or went away since it was read. */
export async function deleteItemAtVersion (db: Executor, id: string, version: number): Promise<boolean> {
  return await db.transaction(async (tx) => {
    const [deleted] = await tx.delete(items).where(and(eq(items.id, id), eq(items.version, version))).returning({ imageFileId: items.imageFileId })
    if (deleted === undefined) return false
    if (deleted.imageFileId !== null) await deleteFile(tx, deleted.imageFileId)
    await emit(tx, itemDeleted(id))
    return true
  })
}

/**
 * Makes `image` the item's image if the item is still at `version`, deleting the image it replaces: a write to the
 * item, so its version goes up. The file belongs to the item's owner (an admin may upload it), so deleting the owner
 * deletes it too. Undefined, storing nothing, when the item changed or went away since it was read.
 */
export async function setItemImageAtVersion (db: Executor, item: Pick<ItemRow, 'id' | 'version' | 'ownerId'>, image: Image): Promise<ItemRow | undefined> {
  return await db.transaction(async (tx) => {
    // Locked at the version it was read at, so no other write slips in before this one.
    const [current] = await tx.select({ imageFileId: items.imageFileId }).from(items)
      .where(and(eq(items.id, item.id), eq(items.version, item.version))).for('update')
    if (current === undefined) return undefined
    const row = await replaceFile(tx, item.ownerId, image, current.imageFileId, async (fileId) => {
      const [updated] = await tx.update(items)
        .set({ imageFileId: fileId, version: sql`${items.version} + 1`, updatedAt: new Date().toISOString() })
        .where(eq(items.id, item.id))
        .returning(itemColumns)
      return updated
    })
    if (row !== undefined) await emit(tx, itemChanged('item.updated', row))
    return row
  })
}

/** Where an item keeps its image. */
export const itemImage: FileSlot = { table: items, id: items.id, file: items.imageFileId }

/** Deletes every item of a user, with their `item.deleted` events: deleting the user would take them silently. */
export async function deleteItemsOf (db: Executor, ownerId: string): Promise<void> {
  await db.transaction(async (tx) => {
    const deleted = await tx.delete(items).where(eq(items.ownerId, ownerId)).returning({ id: items.id })
    await emit(tx, deleted.map((row) => itemDeleted(row.id)))
  })
}

export interface ItemFilters {
  q?: string | undefined
  tags?: string[] | undefined
  ownerId?: string | undefined
  minPrice?: number | undefined
  maxPrice?: number | undefined
}

export interface ItemListOptions {
  sort: string
  limit: number
  cursor?: string | undefined
  filters: ItemFilters
}

const SORT_COLUMNS = { name: items.name, price: items.price, createdAt: items.createdAt, updatedAt: items.updatedAt }

/** The keyset of a `sort` list such as `price,-name`, the id breaking ties. */
export const itemSortKeys = sortParser(SORT_COLUMNS, { field: 'id', column: items.id })

/** The conditions of the filters given; their values are the placeholders of `filterValues`. */
function filterConditions (filters: ItemFilters): Array<SQL | undefined> {
  return [
    // A constant regconfig, so the GIN index over the generated `search` column applies.
    filters.q === undefined ? undefined : sql`${items.search} @@ websearch_to_tsquery('english', ${sql.placeholder('q')})`,
    filters.tags === undefined ? undefined : sql`${items.tags} @> ${sql.param(sql.placeholder('tags'), items.tags)}`,
    filters.ownerId === undefined ? undefined : eq(items.ownerId, sql.placeholder('ownerId')),
    filters.minPrice === undefined ? undefined : gte(items.price, sql.placeholder('minPrice')),
    filters.maxPrice === undefined ? undefined : lte(items.price, sql.placeholder('maxPrice'))
  ]
}

/** The values of the filters given, for the placeholders of `filterConditions`. */
function filterValues (filters: ItemFilters): Record<string, unknown> {
  return {
    q: filters.q,
    tags: filters.tags,
    ownerId: filters.ownerId,
    minPrice: filters.minPrice === undefined ? undefined : priceText(filters.minPrice),
    maxPrice: filters.maxPrice === undefined ? undefined : priceText(filters.maxPrice)
  }
}

/** The filters a listing uses: an empty list of tags filters nothing. */
const usedFilters = (filters: ItemFilters): ItemFilters =>
  filters.tags?.length === 0 ? { ...filters, tags: undefined } : filters

/** The query of a listing's pages (with the values of `filterValues` and `pageValues`), to run or explain. */
export const selectItems = (db: Executor, filters: ItemFilters, keys: SortKey[], fromCursor: boolean) => {
  const page = pageQuery(keys, fromCursor)
  return db.select(itemColumns).from(items).where(and(...filterConditions(filters), page.after)).orderBy(...page.orderBy).limit(page.limit)
}

/** The page request of a listing; its cursor is bound to the filters (tags in any order) and the sort. */
export function itemsPageRequest (options: ItemListOptions): PageRequest {
  const { tags, ...filters } = options.filters
  const tagSet = tags === undefined ? undefined : [...new Set(tags)].sort()
  return { limit: options.limit, cursor: options.cursor, binding: { resource: 'items', sort: options.sort, ...filters, tags: tagSet } }
}

/** A page of items. Its query is prepared once per shape: the sort, which filters are given, and whether from a cursor. */
export async function listItems (db: Executor, codec: CursorCodec, options: ItemListOptions): Promise<KeysetPage<ItemRow>> {
  const filters = usedFilters(options.filters)
  const keys = itemSortKeys(options.sort)
  const given = Object.entries(filters).filter(([, value]) => value !== undefined).map(([name]) => name).sort().join(',')
  return await paginate(codec, keys, itemsPageRequest(options), async (fromCursor, values) =>
    await preparedSelect(db, `items.list ${options.sort} ${given}${fromCursor ? ' after' : ''}`, itemColumns, (executor) =>
      selectItems(executor, filters, keys, fromCursor)
    ).execute({ ...filterValues(filters), ...values }))
}

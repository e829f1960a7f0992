import { createHash } from 'node:crypto'
import { eq, inArray, sql, type SQL } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import type { ImageType } from '../../schemas/files.js'
import type { Executor } from '../db/client.js'
import { files, items, users } from '../db/schema.js'
import { ifMatchHolds } from '../lib/conditional.js'
import { itemChanged, itemColumns, itemEtag, type ItemRow } from '../items/repository.js'
import { emit } from '../realtime/outbox.js'
import { updateUser, type UserRow } from '../users/repository.js'

/** An uploaded image whose type was recognised from its bytes. */
export interface Image {
  contentType: ImageType
  data: Buffer
}

/** What a GET serves: the bytes are left out (null) when the client already holds them. */
export interface StoredImage {
  contentType: string
  sha256: string
  data: Uint8Array | null
}

/** The entity tags of an `If-None-Match` header: `*` (any), or the SHA-256 hashes it lists. */
export type KnownTags = '*' | string[]

/** Stores a file (its size and SHA-256 computed here) and returns its id. */
export async function insertFile (db: Executor, ownerId: string, file: { contentType: string, data: Buffer }): Promise<string> {
  const id = uuidv7()
  await db.insert(files).values({
    id,
    ownerId,
    contentType: file.contentType,
    size: file.data.length,
    sha256: createHash('sha256').update(file.data).digest('hex'),
    data: file.data
  })
  return id
}

async function deleteFileById (db: Executor, id: string): Promise<void> {
  await db.delete(files).where(eq(files.id, id))
}

/**
 * Makes `image` the item's image, deleting the one it replaces. A write to the item: its version goes up.
 * The file belongs to the item's owner (an admin may upload it), so deleting the owner deletes it too.
 * Undefined when the item no longer exists; `'precondition-failed'`, storing nothing, when `ifMatch` (the request's
 * `If-Match`) does not hold: checked under the row lock, so no other write can slip in between.
 */
export async function setItemImage (db: Executor, itemId: string, image: Image, ifMatch: string | undefined): Promise<ItemRow | 'precondition-failed' | undefined> {
  return await db.transaction(async (tx) => {
    const [current] = await tx.select({ id: items.id, version: items.version, ownerId: items.ownerId, imageFileId: items.imageFileId })
      .from(items).where(eq(items.id, itemId)).for('update')
    if (current === undefined) return undefined
    if (!ifMatchHolds(ifMatch, itemEtag(current))) return 'precondition-failed'
    const fileId = await insertFile(tx, current.ownerId, image)
    const [row] = await tx.update(items)
      .set({ imageFileId: fileId, version: sql`${items.version} + 1`, updatedAt: new Date().toISOString() })
      .where(eq(items.id, itemId))
      .returning(itemColumns)
    if (current.imageFileId !== null) await deleteFileById(tx, current.imageFileId)
    if (row !== undefined) await emit(tx, itemChanged('item.updated', row))
    return row
  })
}

/** Makes `image` the user's avatar, deleting the one it replaces. Undefined when the user no longer exists. */
export async function setAvatar (db: Executor, userId: string, image: Image): Promise<UserRow | undefined> {
  return await db.transaction(async (tx) => {
    const [current] = await tx.select({ avatarFileId: users.avatarFileId }).from(users).where(eq(users.id, userId)).for('update')
    if (current === undefined) return undefined
    const avatarFileId = await insertFile(tx, userId, image)
    const row = await updateUser(tx, userId, { avatarFileId })
    if (current.avatarFileId !== null) await deleteFileById(tx, current.avatarFileId)
    return row
  })
}

/** The bytes, or null when their hash is one the client already holds (it gets a 304 and needs none). */
function dataUnless (known: KnownTags): SQL<Uint8Array | null> {
  const held = known === '*' ? sql`true` : known.length === 0 ? sql`false` : inArray(files.sha256, known)
  return sql<Uint8Array | null>`case when ${held} then null else ${files.data} end`
}

const servedColumns = (known: KnownTags) => ({ contentType: files.contentType, sha256: files.sha256, data: dataUnless(known) })

/** The image of an item; undefined when the item does not exist or has none. */
export async function findItemImage (db: Executor, itemId: string, known: KnownTags): Promise<StoredImage | undefined> {
  const [row] = await db.select(servedColumns(known)).from(items)
    .innerJoin(files, eq(files.id, items.imageFileId))
    .where(eq(items.id, itemId))
  return row
}

/** The avatar of a user; undefined when the user does not exist or has none. */
export async function findAvatar (db: Executor, userId: string, known: KnownTags): Promise<StoredImage | undefined> {
  const [row] = await db.select(servedColumns(known)).from(users)
    .innerJoin(files, eq(files.id, users.avatarFileId))
    .where(eq(users.id, userId))
  return row
}

import { createHash } from 'node:crypto'
import { eq, inArray, sql, type SQL } from 'drizzle-orm'
import type { AnyPgColumn, PgTable } from 'drizzle-orm/pg-core'
import { v7 as uuidv7 } from 'uuid'
import type { Executor } from '../db/client.js'
import { files } from '../db/schema.js'

/** A file to store: its bytes and their recognised type. */
export interface NewFile {
  contentType: string
  data: Buffer
}

/** What a GET serves: the bytes are left out (null) when the client already holds them. */
export interface StoredFile {
  contentType: string
  sha256: string
  data: Uint8Array | null
}

/** The entity tags of an `If-None-Match` header: `*` (any), or the SHA-256 hashes it lists. */
export type KnownTags = '*' | string[]

/** Stores a file (its size and SHA-256 computed here) for `ownerId` (deleting the owner deletes it) and returns its id. */
export async function insertFile (db: Executor, ownerId: string, file: NewFile): Promise<string> {
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

export async function deleteFile (db: Executor, id: string): Promise<void> {
  await db.delete(files).where(eq(files.id, id))
}

/** The bytes, or null when their hash is one the client already holds (it gets a 304 and needs none). */
function dataUnless (known: KnownTags): SQL<Uint8Array | null> {
  const held = known === '*' ? sql`true` : known.length === 0 ? sql`false` : inArray(files.sha256, known)
  return sql<Uint8Array | null>`case when ${held} then null else ${files.data} end`
}

const servedColumns = (known: KnownTags) => ({ contentType: files.contentType, sha256: files.sha256, data: dataUnless(known) })

/** Where an entity keeps the id of its file (an item's image, a user's avatar): its table, id and file columns. */
export interface FileSlot {
  table: PgTable
  id: AnyPgColumn
  file: AnyPgColumn
}

/** The file in `slot` of the entity `id`; undefined when the entity does not exist or has none. */
export async function findAttachedFile (db: Executor, slot: FileSlot, id: string, known: KnownTags): Promise<StoredFile | undefined> {
  const [row] = await db.select(servedColumns(known)).from(slot.table).innerJoin(files, eq(files.id, slot.file)).where(eq(slot.id, id))
  return row
}

/**
 * Stores `file` for `ownerId` (deleting the owner deletes it), lets `attach` point an entity at it, and deletes the
 * file it replaces: call it in the transaction that locked the entity and read `replaced`.
 */
export async function replaceFile<T> (tx: Executor, ownerId: string, file: NewFile, replaced: string | null, attach: (fileId: string) => Promise<T>): Promise<T> {
  const attached = await attach(await insertFile(tx, ownerId, file))
  if (replaced !== null) await deleteFile(tx, replaced)
  return attached
}

import { and, eq, sql, type SQL } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import { API_PREFIX } from '../../schemas/common.js'
import type { User } from '../../schemas/users.js'
import { loginsChanged, sameEmail } from '../auth/repository.js'
import type { Executor } from '../db/client.js'
import { users } from '../db/schema.js'
import { entityTag } from '../kit/responses.js'
import { sqlState } from '../lib/sql-state.js'
import { paginateQuery, sortParser, type CursorCodec, type KeysetPage } from '../lib/pagination.js'
import { conflict } from '../lib/problem.js'
import { replaceFile, type FileSlot } from '../storage/files.js'
import type { Image } from '../storage/images.js'

/** Every column but the password hash, which only the login and password checks read. */
const publicColumns = {
  id: users.id,
  email: users.email,
  fullName: users.fullName,
  isActive: users.isActive,
  isSuperuser: users.isSuperuser,
  avatarFileId: users.avatarFileId,
  createdAt: users.createdAt,
  updatedAt: users.updatedAt
}

export type UserRow = {
  id: string
  email: string
  fullName: string | null
  isActive: boolean
  isSuperuser: boolean
  avatarFileId: string | null
  createdAt: Date
  updatedAt: Date
}

export interface NewUser {
  email: string
  passwordHash: string
  fullName?: string | null | undefined
  isSuperuser?: boolean
}

export interface UserChanges {
  email?: string | undefined
  fullName?: string | null | undefined
  isActive?: boolean | undefined
  isSuperuser?: boolean | undefined
  passwordHash?: string | undefined
  avatarFileId?: string | null | undefined
}

export interface UserFilters {
  isActive?: boolean | undefined
  isSuperuser?: boolean | undefined
  email?: string | undefined
}

export const userUrl = (id: string) => `${API_PREFIX}/users/${id}`

export const toUser = (row: UserRow): User => ({
  id: row.id,
  email: row.email,
  fullName: row.fullName,
  isActive: row.isActive,
  isSuperuser: row.isSuperuser,
  avatarUrl: row.avatarFileId === null ? null : `${userUrl(row.id)}/avatar`,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString()
})

/** Every write sets `updatedAt`, at millisecond precision: it is the account's version. */
export const userEtag = (row: Pick<UserRow, 'id' | 'updatedAt'>) => entityTag(row.id, row.updatedAt.getTime())

/** Runs `work`, turning the case-insensitive unique email index's violation into a 409 problem. */
export async function withUniqueEmail<T> (work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    if (sqlState(error) === '23505') throw conflict('Another account already uses this email', { code: 'email-taken' })
    throw error
  }
}

export async function findUserById (db: Executor, id: string): Promise<UserRow | undefined> {
  const [row] = await db.select(publicColumns).from(users).where(eq(users.id, id)).limit(1)
  return row
}

export async function findUserByEmail (db: Executor, email: string): Promise<UserRow | undefined> {
  const [row] = await db.select(publicColumns).from(users).where(sameEmail(email)).limit(1)
  return row
}

export async function findPasswordHash (db: Executor, id: string): Promise<string | undefined> {
  const [row] = await db.select({ passwordHash: users.passwordHash }).from(users).where(eq(users.id, id)).limit(1)
  return row?.passwordHash
}

export async function insertUser (db: Executor, user: NewUser): Promise<UserRow> {
  const now = new Date()
  const [row] = await db.insert(users).values({
    id: uuidv7(),
    email: user.email,
    passwordHash: user.passwordHash,
    fullName: user.fullName ?? null,
    isSuperuser: user.isSuperuser ?? false,
    createdAt: now,
    updatedAt: now
  }).returning(publicColumns)
  if (row === undefined) throw new Error('insert returned no row')
  return row
}

export async function updateUser (db: Executor, id: string, changes: UserChanges): Promise<UserRow | undefined> {
  const set = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined)) as UserChanges
  if (Object.keys(set).length === 0) return await findUserById(db, id)
  const [row] = await db.update(users).set({ ...set, updatedAt: new Date() }).where(eq(users.id, id)).returning(publicColumns)
  // Whether the user's logins stay live, and what they grant, depend on these.
  if (set.isActive !== undefined || set.isSuperuser !== undefined) loginsChanged.emit(db, { userId: id })
  return row
}

export async function deleteUserById (db: Executor, id: string): Promise<boolean> {
  const deleted = await db.delete(users).where(eq(users.id, id)).returning({ id: users.id })
  loginsChanged.emit(db, { userId: id })
  return deleted.length > 0
}

export async function anySuperuser (db: Executor): Promise<boolean> {
  const [row] = await db.select({ id: users.id }).from(users).where(eq(users.isSuperuser, true)).limit(1)
  return row !== undefined
}

/**
 * The ids of the active superusers, locked until the transaction ends (always in id order, so two
 * transactions never deadlock): a concurrent demotion or deletion waits, then sees this one's outcome.
 */
export async function lockActiveSuperusers (tx: Executor): Promise<string[]> {
  const rows = await tx.select({ id: users.id }).from(users)
    .where(and(eq(users.isSuperuser, true), eq(users.isActive, true)))
    .orderBy(users.id)
    .for('update')
  return rows.map((row) => row.id)
}

/** Makes `\`, `%` and `_` literal in a LIKE pattern. */
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (char) => `\\${char}`)

const userSortKeys = sortParser({ createdAt: users.createdAt, email: users.email }, { field: 'id', column: users.id })

export async function listUsers (
  db: Executor,
  codec: CursorCodec,
  options: { sort: string, limit: number, cursor?: string | undefined, filters: UserFilters }
): Promise<KeysetPage<UserRow>> {
  const { filters } = options
  const keys = userSortKeys(options.sort)
  const conditions: Array<SQL | undefined> = [
    filters.isActive === undefined ? undefined : eq(users.isActive, filters.isActive),
    filters.isSuperuser === undefined ? undefined : eq(users.isSuperuser, filters.isSuperuser),
    filters.email === undefined ? undefined : sql`${users.email} ilike ${`%${likeLiteral(filters.email)}%`}`
  ]
  const request = { limit: options.limit, cursor: options.cursor, binding: { resource: 'users', sort: options.sort, ...filters } }
  return await paginateQuery(codec, keys, request, ({ after, orderBy, limit }) =>
    db.select(publicColumns).from(users).where(and(...conditions, after)).orderBy(...orderBy).limit(limit))
}

/** Makes `image` the user's avatar, deleting the one it replaces. Undefined when the user no longer exists. */
export async function setAvatar (db: Executor, userId: string, image: Image): Promise<UserRow | undefined> {
  return await db.transaction(async (tx) => {
    const [current] = await tx.select({ avatarFileId: users.avatarFileId }).from(users).where(eq(users.id, userId)).for('update')
    if (current === undefined) return undefined
    return await replaceFile(tx, userId, image, current.avatarFileId, (avatarFileId) => updateUser(tx, userId, { avatarFileId }))
  })
}

/** Where a user keeps their avatar. */
export const userAvatar: FileSlot = { table: users, id: users.id, file: users.avatarFileId }

import { createHash, randomBytes } from 'node:crypto'
import { and, eq, gt, inArray, isNotNull, isNull, lte, or, sql } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import { commitSignal, type Executor } from '../db/client.js'
import { refreshTokens, sessions, users } from '../db/schema.js'
import { preparedSelect } from '../db/statements.js'

/** Refresh tokens are 32 random bytes; only their SHA-256 is stored. */
export const newRefreshToken = () => randomBytes(32).toString('base64url')
export const hashRefreshToken = (token: string) => createHash('sha256').update(token).digest('hex')

export interface LiveSession {
  id: string
  userId: string
  scope: string
  isSuperuser: boolean
  expiresAt: Date
}

/** What may have ended logins or narrowed what they grant: one login, or every login of a user. */
export type LoginChange = { sessionId: string } | { userId: string }

/** Told when a transaction that changed logins commits (the session cache forgets them). */
export const loginsChanged = commitSignal<LoginChange>()

/** The account whose email is `email`, compared as the unique index compares them: case-insensitively. */
export const sameEmail = (email: string) => eq(sql`lower(${users.email})`, email.toLowerCase())

/** What a login needs to know about an account, the password hash included. */
export async function findCredentialsByEmail (db: Executor, email: string) {
  const [row] = await db.select({ id: users.id, passwordHash: users.passwordHash, isActive: users.isActive, isSuperuser: users.isSuperuser })
    .from(users).where(sameEmail(email)).limit(1)
  return row
}

/** Starts a login and returns its id. */
export async function createSession (db: Executor, userId: string, scope: string, expiresAt: Date): Promise<string> {
  const id = uuidv7()
  await db.insert(sessions).values({ id, userId, scope, expiresAt })
  return id
}

/** Stores a new refresh token of a login (hashed) and moves the login's end to the token's. */
export async function addRefreshToken (db: Executor, sessionId: string, token: string, expiresAt: Date): Promise<void> {
  await db.insert(refreshTokens).values({ id: uuidv7(), sessionId, tokenHash: hashRefreshToken(token), expiresAt })
  await db.update(sessions).set({ expiresAt }).where(eq(sessions.id, sessionId))
}

/**
 * Marks an unused, unexpired refresh token used, atomically: of two concurrent uses exactly one wins.
 * Returns its login, or undefined when the token is unknown, expired or already spent.
 */
export async function consumeRefreshToken (db: Executor, tokenHash: string, now: Date): Promise<string | undefined> {
  const [row] = await db.update(refreshTokens)
    .set({ usedAt: now })
    .where(and(eq(refreshTokens.tokenHash, tokenHash), isNull(refreshTokens.usedAt), gt(refreshTokens.expiresAt, now)))
    .returning({ sessionId: refreshTokens.sessionId })
  return row?.sessionId
}

export async function findRefreshToken (db: Executor, tokenHash: string) {
  const [row] = await db.select({ sessionId: refreshTokens.sessionId, usedAt: refreshTokens.usedAt, userId: sessions.userId })
    .from(refreshTokens)
    .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
    .where(eq(refreshTokens.tokenHash, tokenHash))
    .limit(1)
  return row
}

const liveSessionColumns = { id: sessions.id, userId: sessions.userId, scope: sessions.scope, isSuperuser: users.isSuperuser, expiresAt: sessions.expiresAt }

/** A login that has not ended, of a user that exists and is active (and is `userId`, when given). */
export async function findLiveSession (db: Executor, sessionId: string, now: Date, userId?: string): Promise<LiveSession | undefined> {
  const [row] = await preparedSelect(db, userId === undefined ? 'sessions.live' : 'sessions.live_of_user', liveSessionColumns, (executor) =>
    executor.select(liveSessionColumns)
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(
        eq(sessions.id, sql.placeholder('sessionId')),
        userId === undefined ? undefined : eq(sessions.userId, sql.placeholder('userId')),
        isNull(sessions.revokedAt),
        gt(sessions.expiresAt, sql.placeholder('now')),
        eq(users.isActive, true)
      ))
      .limit(1)
  ).execute({ sessionId, userId, now: now.toISOString() })
  return row
}

/** Which of these logins have not ended (and belong to an active user): one query for many long-lived connections. */
export async function liveSessionIds (db: Executor, ids: string[], now: Date): Promise<Set<string>> {
  if (ids.length === 0) return new Set()
  const found = await db.select({ id: sessions.id })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(inArray(sessions.id, ids), isNull(sessions.revokedAt), gt(sessions.expiresAt, now), eq(users.isActive, true)))
  return new Set(found.map((row) => row.id))
}

/** Ends a login: its refresh tokens and access tokens stop working. */
export async function revokeSession (db: Executor, sessionId: string): Promise<void> {
  await db.update(sessions).set({ revokedAt: new Date() }).where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)))
  loginsChanged.emit(db, { sessionId })
}

/** Narrows what a login grants: later refreshes never get back what a refresh gave up. */
export async function narrowSessionScope (db: Executor, sessionId: string, scope: string): Promise<void> {
  await db.update(sessions).set({ scope }).where(eq(sessions.id, sessionId))
  loginsChanged.emit(db, { sessionId })
}

/** Ends every login of a user. */
export async function revokeUserSessions (db: Executor, userId: string): Promise<void> {
  await db.update(sessions).set({ revokedAt: new Date() }).where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)))
  loginsChanged.emit(db, { userId })
}

/** Deletes expired refresh tokens and ended logins (their tokens go with them). */
export async function deleteExpired (db: Executor, now: Date): Promise<{ sessions: number, refreshTokens: number }> {
  const tokens = await db.delete(refreshTokens).where(lte(refreshTokens.expiresAt, now)).returning({ id: refreshTokens.id })
  const ended = await db.delete(sessions)
    .where(or(lte(sessions.expiresAt, now), isNotNull(sessions.revokedAt)))
    .returning({ id: sessions.id })
  return { sessions: ended.length, refreshTokens: tokens.length }
}

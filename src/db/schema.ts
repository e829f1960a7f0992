import { sql } from 'drizzle-orm'
import { boolean, index, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core'

/** Millisecond precision, so a timestamp survives the round trip through JSON and keyset cursors. */
const timestamptz = () => timestamp({ withTimezone: true, precision: 3, mode: 'date' })

export const users = pgTable('users', {
  id: uuid().primaryKey(),
  email: text().notNull(),
  fullName: text(),
  passwordHash: text().notNull(),
  isActive: boolean().notNull().default(true),
  isSuperuser: boolean().notNull().default(false),
  createdAt: timestamptz().notNull().defaultNow(),
  updatedAt: timestamptz().notNull().defaultNow()
}, (t) => [
  uniqueIndex('users_email_lower_key').on(sql`lower(${t.email})`),
  index('users_created_at_id_idx').on(t.createdAt, t.id),
  index('users_email_id_idx').on(t.email, t.id)
])

/** A login: every token pair descending from one password grant. Ending it ends its access tokens. */
export const sessions = pgTable('sessions', {
  id: uuid().primaryKey(),
  userId: uuid().notNull().references(() => users.id, { onDelete: 'cascade' }),
  scope: text().notNull(),
  createdAt: timestamptz().notNull().defaultNow(),
  expiresAt: timestamptz().notNull(),
  revokedAt: timestamptz()
}, (t) => [
  index('sessions_user_id_idx').on(t.userId),
  index('sessions_expires_at_idx').on(t.expiresAt)
])

/** Refresh tokens are stored as SHA-256 hashes; a used one is kept until it expires to detect reuse. */
export const refreshTokens = pgTable('refresh_tokens', {
  id: uuid().primaryKey(),
  sessionId: uuid().notNull().references(() => sessions.id, { onDelete: 'cascade' }),
  tokenHash: text().notNull().unique(),
  createdAt: timestamptz().notNull().defaultNow(),
  expiresAt: timestamptz().notNull(),
  usedAt: timestamptz()
}, (t) => [
  index('refresh_tokens_session_id_idx').on(t.sessionId),
  index('refresh_tokens_expires_at_idx').on(t.expiresAt)
])

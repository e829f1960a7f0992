import { sql } from 'drizzle-orm'
import {
  bigint, boolean, check, customType, doublePrecision, index, integer, jsonb, numeric, pgTable, primaryKey, smallint, text, timestamp, uniqueIndex, uuid,
  type AnyPgColumn
} from 'drizzle-orm/pg-core'

/** Millisecond precision, so a timestamp survives the round trip through JSON and keyset cursors. */
const timestamptz = () => timestamp({ withTimezone: true, precision: 3, mode: 'date' })

/** Postgres's text of a UTC timestamp (`2026-12-02 18:33:02.23+00`) as RFC 3339 with milliseconds, as the API writes it. */
export function rfc3339 (text: string): string {
  if (text.length < 22 || text[10] !== ' ' || !text.endsWith('+00')) return new Date(text).toISOString()
  const fraction = text.slice(20, -3)
  return `${text.slice(0, 10)}T${text.slice(11, 19)}.${fraction.padEnd(3, '0').slice(0, 3)}Z`
}

/**
 * The same column, read as the RFC 3339 text the API sends, without a Date in between: listing a page of items would
 * otherwise parse and print forty dates. Values are written as such text. A session in another time zone than UTC
 * still reads correctly, through a Date.
 */
const isoTimestamp = customType<{ data: string, driverData: string }>({
  dataType: () => 'timestamp (3) with time zone',
  fromDriver: rfc3339
})

export const users = pgTable('users', {
  id: uuid().primaryKey(),
  email: text().notNull(),
  fullName: text(),
  passwordHash: text().notNull(),
  isActive: boolean().notNull().default(true),
  isSuperuser: boolean().notNull().default(false),
  avatarFileId: uuid().references((): AnyPgColumn => files.id, { onDelete: 'set null' }),
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

/** Raw bytes; node-postgres returns a Buffer and PGlite a Uint8Array. */
const bytea = customType<{ data: Uint8Array, driverData: Uint8Array }>({ dataType: () => 'bytea' })
const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' })

/** Uploaded files (item images, avatars, import inputs), kept in the database so every instance serves them. */
export const files = pgTable('files', {
  id: uuid().primaryKey(),
  ownerId: uuid().notNull().references(() => users.id, { onDelete: 'cascade' }),
  contentType: text().notNull(),
  size: integer().notNull(),
  sha256: text().notNull(),
  data: bytea().notNull(),
  createdAt: timestamptz().notNull().defaultNow()
}, (t) => [
  index('files_owner_id_idx').on(t.ownerId)
])

export const items = pgTable('items', {
  id: uuid().primaryKey(),
  ownerId: uuid().notNull().references(() => users.id, { onDelete: 'cascade' }),
  name: text().notNull(),
  description: text(),
  /** Exact money: at most 2 decimals, up to 1,000,000,000. */
  price: numeric({ precision: 12, scale: 2 }).notNull(),
  tags: text().array().notNull().default(sql`'{}'::text[]`),
  imageFileId: uuid().references(() => files.id, { onDelete: 'set null' }),
  version: integer().notNull().default(1),
  createdAt: isoTimestamp().notNull().default(sql`now()`),
  updatedAt: isoTimestamp().notNull().default(sql`now()`),
  /** Full-text document: English stemming, the name weighing more than the description. */
  search: tsvector().notNull().generatedAlwaysAs(
    sql`setweight(to_tsvector('english', name), 'A') || setweight(to_tsvector('english', coalesce(description, '')), 'B')`
  )
}, (t) => [
  // One index per sort key, each ending in the id tie-breaker, so every page is an index range scan.
  index('items_created_at_id_idx').on(t.createdAt, t.id),
  index('items_updated_at_id_idx').on(t.updatedAt, t.id),
  index('items_price_id_idx').on(t.price, t.id),
  index('items_name_id_idx').on(t.name, t.id),
  index('items_owner_id_created_at_id_idx').on(t.ownerId, t.createdAt, t.id),
  index('items_tags_idx').using('gin', t.tags),
  index('items_search_idx').using('gin', t.search)
])

/** What `GET /api/v1/jobs/{id}` reads; the queue itself keeps its own tables. */
export const jobs = pgTable('jobs', {
  id: uuid().primaryKey(),
  kind: text().notNull(),
  ownerId: uuid().notNull().references(() => users.id, { onDelete: 'cascade' }),
  /** queued | running | succeeded | failed */
  status: text().notNull().default('queued'),
  progress: doublePrecision().notNull().default(0),
  inputFileId: uuid().references(() => files.id, { onDelete: 'set null' }),
  /** Input lines already processed, committed with the rows they created, so a restarted job resumes there. */
  processed: integer().notNull().default(0),
  result: jsonb(),
  error: text(),
  createdAt: timestamptz().notNull().defaultNow(),
  updatedAt: timestamptz().notNull().defaultNow(),
  finishedAt: timestamptz()
}, (t) => [
  index('jobs_owner_id_idx').on(t.ownerId)
])

/** Stored first responses of `Idempotency-Key` requests, per user and key, kept at least 24 h. */
export const idempotencyKeys = pgTable('idempotency_keys', {
  userId: uuid().notNull().references(() => users.id, { onDelete: 'cascade' }),
  key: text().notNull(),
  /** SHA-256 of the method, route and parsed body: the same key with another request is refused. */
  fingerprint: text().notNull(),
  /** in_progress | completed */
  state: text().notNull().default('in_progress'),
  responseStatus: integer(),
  responseHeaders: jsonb().$type<Record<string, string>>(),
  responseBody: text(),
  createdAt: timestamptz().notNull().defaultNow(),
  expiresAt: timestamptz().notNull()
}, (t) => [
  primaryKey({ columns: [t.userId, t.key] }),
  index('idempotency_keys_expires_at_idx').on(t.expiresAt)
])

/**
 * The outbox: every change's events, written in the transaction of the change. Ids come from one sequence, in the
 * order the events were written; readers deliver them in id order, never past an id a running transaction may still hold.
 */
export const events = pgTable('events', {
  id: bigint({ mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  topic: text().notNull(),
  name: text().notNull(),
  data: jsonb().notNull(),
  /** When the event was written: the end of its transaction, as near as the database can tell. */
  createdAt: timestamptz().notNull().default(sql`clock_timestamp()`)
}, (t) => [
  index('events_topic_id_idx').on(t.topic, t.id),
  index('events_created_at_idx').on(t.createdAt)
])

/** One row: the newest event id pruned, so a replay from before it is refused rather than silently incomplete. */
export const eventLog = pgTable('event_log', {
  id: smallint().primaryKey().default(1),
  prunedThrough: bigint({ mode: 'number' }).notNull().default(0)
}, (t) => [
  check('event_log_one_row', sql`${t.id} = 1`)
])

/** Outgoing webhook endpoints; `secret` is the signing secret, encrypted with a key derived from the token secret. */
export const webhooks = pgTable('webhooks', {
  id: uuid().primaryKey(),
  ownerId: uuid().notNull().references(() => users.id, { onDelete: 'cascade' }),
  url: text().notNull(),
  topics: text().array().notNull(),
  description: text(),
  active: boolean().notNull().default(true),
  disabledReason: text(),
  /** Deliveries in a row whose last attempt failed; a delivered one resets it. */
  failures: integer().notNull().default(0),
  secret: text().notNull(),
  version: integer().notNull().default(1),
  createdAt: isoTimestamp().notNull().default(sql`now()`),
  updatedAt: isoTimestamp().notNull().default(sql`now()`)
}, (t) => [
  index('webhooks_owner_id_created_at_idx').on(t.ownerId, t.createdAt, t.id),
  index('webhooks_topics_idx').using('gin', t.topics)
])

/** Each attempt at delivering an event to a webhook, with the event, so that it can be delivered again. */
export const webhookDeliveries = pgTable('webhook_deliveries', {
  id: uuid().primaryKey(),
  webhookId: uuid().notNull().references(() => webhooks.id, { onDelete: 'cascade' }),
  eventId: bigint({ mode: 'number' }).notNull(),
  event: text().notNull(),
  payload: text().notNull(),
  attempt: integer().notNull(),
  /** delivered | retrying | failed */
  outcome: text().notNull(),
  statusCode: integer(),
  durationMs: integer().notNull(),
  error: text(),
  createdAt: isoTimestamp().notNull().default(sql`now()`)
}, (t) => [
  index('webhook_deliveries_webhook_id_created_at_idx').on(t.webhookId, t.createdAt, t.id)
])

/** One row: the newest event the webhook dispatcher has handed to the delivery queue. */
export const webhookDispatch = pgTable('webhook_dispatch', {
  id: smallint().primaryKey().default(1),
  through: bigint({ mode: 'number' }).notNull().default(0)
}, (t) => [
  check('webhook_dispatch_one_row', sql`${t.id} = 1`)
])

import { and, eq, sql } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import { API_PREFIX } from '../../schemas/common.js'
import type { Webhook, WebhookCreate, WebhookDelivery } from '../../schemas/webhooks.js'
import type { Executor } from '../db/client.js'
import { webhookDeliveries, webhooks } from '../db/schema.js'
import { entityTag } from '../kit/responses.js'
import { newestFirst, paginateQuery, type CursorCodec, type KeysetPage, type PageRequest } from '../lib/pagination.js'

export type WebhookRow = typeof webhooks.$inferSelect
export type DeliveryRow = typeof webhookDeliveries.$inferSelect
export type WebhookChanges = Partial<Pick<WebhookRow, 'url' | 'topics' | 'description' | 'active' | 'disabledReason' | 'failures' | 'secret'>>

export const webhookUrl = (id: string) => `${API_PREFIX}/webhooks/${id}`
export const webhookEtag = (row: Pick<WebhookRow, 'id' | 'version'>) => entityTag(row.id, row.version)

/** The API view: the secret and the failure count stay inside. */
export const toWebhook = ({ secret, failures, ...webhook }: WebhookRow): Webhook => webhook

export const toDelivery = ({ payload, ...row }: DeliveryRow): WebhookDelivery => ({ ...row, eventId: String(row.eventId), outcome: row.outcome as WebhookDelivery['outcome'] })

export async function insertWebhook (db: Executor, ownerId: string, input: WebhookCreate, sealedSecret: string): Promise<WebhookRow> {
  const [row] = await db.insert(webhooks)
    .values({ id: uuidv7(), ownerId, url: input.url, topics: input.topics, description: input.description ?? null, secret: sealedSecret })
    .returning()
  if (row === undefined) throw new Error('insert returned no row')
  return row
}

export async function findWebhook (db: Executor, id: string): Promise<WebhookRow | undefined> {
  const [row] = await db.select().from(webhooks).where(eq(webhooks.id, id))
  return row
}

/** Applies `changes` if the webhook is still at `version`; undefined when it changed or went away since it was read. */
export async function updateWebhookAtVersion (db: Executor, id: string, version: number, changes: WebhookChanges): Promise<WebhookRow | undefined> {
  const [row] = await db.update(webhooks)
    .set({ ...changes, version: sql`${webhooks.version} + 1`, updatedAt: new Date().toISOString() })
    .where(and(eq(webhooks.id, id), eq(webhooks.version, version)))
    .returning()
  return row
}

export async function deleteWebhookAtVersion (db: Executor, id: string, version: number): Promise<boolean> {
  const deleted = await db.delete(webhooks).where(and(eq(webhooks.id, id), eq(webhooks.version, version))).returning({ id: webhooks.id })
  return deleted.length > 0
}

type PageOptions = Omit<PageRequest, 'binding'>

export async function listWebhooks (db: Executor, codec: CursorCodec, ownerId: string, page: PageOptions): Promise<KeysetPage<WebhookRow>> {
  return await paginateQuery(codec, newestFirst(webhooks.createdAt, webhooks.id), { ...page, binding: { resource: 'webhooks', ownerId } }, ({ after, orderBy, limit }) =>
    db.select().from(webhooks).where(and(eq(webhooks.ownerId, ownerId), after)).orderBy(...orderBy).limit(limit))
}

export async function listDeliveries (db: Executor, codec: CursorCodec, webhookId: string, page: PageOptions): Promise<KeysetPage<DeliveryRow>> {
  const keys = newestFirst(webhookDeliveries.createdAt, webhookDeliveries.id)
  return await paginateQuery(codec, keys, { ...page, binding: { resource: 'webhook-deliveries', webhookId } }, ({ after, orderBy, limit }) =>
    db.select().from(webhookDeliveries).where(and(eq(webhookDeliveries.webhookId, webhookId), after)).orderBy(...orderBy).limit(limit))
}

export async function findDelivery (db: Executor, webhookId: string, id: string): Promise<DeliveryRow | undefined> {
  const [row] = await db.select().from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.webhookId, webhookId), eq(webhookDeliveries.id, id)))
  return row
}

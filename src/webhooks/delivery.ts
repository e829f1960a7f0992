import { sql } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import { rows, type Db, type Executor } from '../db/client.js'
import { webhookDeliveries } from '../db/schema.js'
import type { JobQueue } from '../jobs/queue.js'
import { readEventHorizon } from '../realtime/outbox.js'
import type { DeliveryClient } from './client.js'
import { findWebhook, type DeliveryRow } from './repository.js'
import { classify, DISABLE_AFTER_FAILURES, MAX_ATTEMPTS, retryDelayMs } from './retry.js'
import type { SecretBox } from './sealing.js'
import { signedHeaders } from './signing.js'

export const DELIVERY_QUEUE = 'webhooks.deliver'
/** Events read per dispatch transaction. */
const DISPATCH_BATCH = 200

/** One event on its way to one endpoint: the signed body stays the same on every attempt. */
export interface DeliveryJob {
  webhookId: string
  eventId: number
  event: string
  payload: string
  attempt: number
}

/** The event of an earlier delivery, to deliver again as a new series of attempts. */
export const redelivery = ({ webhookId, eventId, event, payload }: DeliveryRow): DeliveryJob => ({ webhookId, eventId, event, payload, attempt: 1 })

/** What sends and schedules deliveries: the job queue's sending side. */
type DeliveryQueue = Pick<JobQueue, 'send'>

export interface DeliveryOptions {
  /** The first retry's delay; each further one doubles it, with jitter (30 s by default). */
  retryBaseMs?: number
}

/** The body of a delivery, as the Standard Webhooks specification suggests: the event's name, time and data. */
const eventPayload = (event: { name: string, createdAt: Date, data: unknown }) =>
  JSON.stringify({ type: event.name, timestamp: event.createdAt.toISOString(), data: event.data })

type DispatchState = 'more' | 'waiting' | 'done'

/**
 * Hands the outbox's events to the delivery queue: each event to every active endpoint whose topics include its topic
 * (created before it), in one transaction with the dispatch cursor, so every event is queued exactly once even with
 * several instances, and none is lost to a crash. Events are taken in id order and never past one a running
 * transaction may still commit (as the live channel's hub does), so a late commit is not skipped; only the events
 * some endpoint follows are read.
 */
export class Dispatcher {
  private pending: { upTo: number, running: string[] } | undefined
  private started = false

  constructor (private readonly db: Db, private readonly queue: DeliveryQueue) {}

  /**
   * Dispatches what it can, and says how many deliveries it queued and what is left: `more` when it took a full batch
   * (run it again at once), `waiting` when events wait for transactions still running (run it again shortly), `done`.
   */
  async dispatch (): Promise<{ state: DispatchState, queued: number }> {
    const outcome = await this.db.transaction(async (tx): Promise<{ state: DispatchState, queued: number }> => {
      // The cursor starts at the newest event when there is none yet: endpoints get the events after they are created.
      if (!this.started) await tx.execute(sql`insert into webhook_dispatch (id, through) select 1, coalesce(max(id), 0) from events on conflict (id) do nothing`)
      // Another instance dispatching holds the row: it takes these events.
      const [cursor] = await rows<{ through: number | string }>(tx, sql`select through from webhook_dispatch where id = 1 for update skip locked`)
      if (cursor === undefined) return { state: 'done', queued: 0 }
      const through = Number(cursor.through)
      const horizon = await readEventHorizon(tx, through, DISPATCH_BATCH, this.pending?.running ?? [])
      let settled = through
      if (this.pending !== undefined && horizon.settled) settled = Math.max(settled, this.pending.upTo)
      // Nothing running: nothing can appear below what this read saw.
      if (horizon.running.length === 0) settled = Math.max(settled, horizon.newest)
      const upTo = Math.min(settled, horizon.newest)
      this.pending = upTo < horizon.newest ? (this.pending ?? { upTo: horizon.newest, running: horizon.running }) : undefined
      const waiting = this.pending !== undefined
      if (upTo <= through) return { state: waiting ? 'waiting' : 'done', queued: 0 }
      const queued = await this.enqueue(tx, through, upTo)
      await tx.execute(sql`update webhook_dispatch set through = ${upTo} where id = 1`)
      return { state: waiting ? 'waiting' : horizon.count === DISPATCH_BATCH ? 'more' : 'done', queued }
    })
    this.started = true
    return outcome
  }

  /** Queues a delivery of each event after `after` and up to `upTo` to each endpoint that follows it; returns how many. */
  private async enqueue (tx: Executor, after: number, upTo: number): Promise<number> {
    const targets = await rows<{ webhook_id: string, id: number | string, name: string, data: unknown, created_at: Date | string }>(tx, sql`
      select w.id as webhook_id, e.id, e.name, e.data, e.created_at
      from events e
      join webhooks w on w.active and w.topics @> array[e.topic] and w.created_at <= e.created_at
        and (e.topic not like 'user:%' or e.topic = 'user:' || w.owner_id::text)
      where e.id > ${after} and e.id <= ${upTo}
      order by e.id, w.id`)
    for (const target of targets) {
      const payload = eventPayload({ name: target.name, createdAt: new Date(target.created_at), data: target.data })
      const job: DeliveryJob = { webhookId: target.webhook_id, eventId: Number(target.id), event: target.name, payload, attempt: 1 }
      await this.queue.send(tx, DELIVERY_QUEUE, job)
    }
    return targets.length
  }
}

/** Delivers one attempt of a job, records it, and schedules the next attempt or gives up. */
export class Deliverer {
  constructor (
    private readonly db: Db,
    private readonly queue: DeliveryQueue,
    private readonly client: DeliveryClient,
    private readonly secrets: SecretBox,
    private readonly options: DeliveryOptions = {}
  ) {}

  async deliver (job: DeliveryJob): Promise<void> {
    const webhook = await findWebhook(this.db, job.webhookId)
    // Deleted or deactivated since it was queued: nothing is sent.
    if (webhook === undefined || !webhook.active) return
    const headers = signedHeaders(this.secrets.open(webhook.secret), `evt_${job.eventId}`, new Date(), job.payload)
    const result = await this.client.post(webhook.url, job.payload, headers)
    const verdict = classify(result)
    const outcome = verdict === 'retry' && job.attempt < MAX_ATTEMPTS ? 'retrying' : verdict === 'delivered' ? 'delivered' : 'failed'
    await this.db.transaction(async (tx) => {
      await tx.insert(webhookDeliveries).values({
        id: uuidv7(),
        webhookId: job.webhookId,
        eventId: job.eventId,
        event: job.event,
        payload: job.payload,
        attempt: job.attempt,
        outcome,
        statusCode: result.status,
        durationMs: Math.round(result.durationMs),
        error: result.error
      })
      if (outcome === 'retrying') {
        const startAfter = new Date(Date.now() + retryDelayMs(job.attempt, result.retryAfterMs, { baseMs: this.options.retryBaseMs }))
        await this.queue.send(tx, DELIVERY_QUEUE, { ...job, attempt: job.attempt + 1 }, { startAfter })
        return
      }
      const reason = `Disabled after ${DISABLE_AFTER_FAILURES} deliveries in a row failed; the last: ${result.error ?? `HTTP ${result.status ?? 'no status'}`}`
      // A delivered event resets the count; a failed one adds to it, and the one that reaches the limit deactivates the endpoint.
      const disabling = sql`(active and ${outcome === 'failed'} and failures + 1 >= ${DISABLE_AFTER_FAILURES})`
      await tx.execute(sql`
        update webhooks set
          failures = case when ${outcome === 'delivered'} then 0 else failures + 1 end,
          active = active and not ${disabling},
          disabled_reason = case when ${disabling} then ${reason} else disabled_reason end,
          version = version + case when ${disabling} then 1 else 0 end,
          updated_at = case when ${disabling} then now() else updated_at end
        where id = ${job.webhookId}`)
    })
  }
}

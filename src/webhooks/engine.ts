import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.js'
import { CoalescedTask } from '../lib/coalesced.js'
import { onEventsCommitted } from '../realtime/outbox.js'
import { createDeliveryClient } from './client.js'
import { Deliverer, DELIVERY_QUEUE, Dispatcher, type DeliveryJob } from './delivery.js'
import type { SecretBox } from './sealing.js'

export interface WebhookTuning {
  /** The first retry's delay (30 s by default). */
  retryBaseMs?: number
  /** The longest an attempt may take, connecting included (10 s by default). */
  timeoutMs?: number
  /** How often the outbox is read when no commit of this instance wakes the dispatcher (1 s by default). */
  pollMs?: number
}

declare module '../kit/resource.js' {
  interface ResourceTuning {
    webhooks?: WebhookTuning
  }
}

/**
 * Deliveries under way at once, per instance: workers that each take a batch of jobs and deliver them concurrently. A
 * batch is done when its slowest delivery is (at most the timeout), so a hanging endpoint holds up one worker only.
 */
const DELIVERY_WORKERS = 4
const DELIVERY_BATCH = 5
/**
 * How often an idle delivery worker looks for jobs: those this instance queues wake it at once, so this only bounds how
 * late a retry whose time has come, or a delivery queued by another instance, starts.
 */
const DELIVERY_POLL_SECONDS = 2
/** How soon to look again when events wait for transactions still running. */
const SETTLE_DELAY_MS = 50
/**
 * Dispatch runs at most this often however fast events come (each run is a transaction that takes all events so far):
 * a burst of writes costs a few dispatches, not one each.
 */
const DISPATCH_INTERVAL_MS = 100

/**
 * Starts delivering: the dispatcher follows the outbox (woken by this instance's commits, and polling for other
 * instances'), and this instance's worker takes delivery jobs, a batch at a time, concurrently.
 */
export function startDeliveries (app: FastifyInstance, config: Config, secrets: SecretBox, tuning: WebhookTuning = {}): void {
  const client = createDeliveryClient({ allowPrivate: config.WEBHOOK_ALLOW_PRIVATE_TARGETS, timeoutMs: tuning.timeoutMs })
  const deliverer = new Deliverer(app.db, app.jobQueue, client, secrets, { retryBaseMs: tuning.retryBaseMs })
  app.jobQueue.define<DeliveryJob>(DELIVERY_QUEUE, async (jobs) => {
    await Promise.all(jobs.map((job) => deliverer.deliver(job.data)))
  }, { workers: DELIVERY_WORKERS, batchSize: DELIVERY_BATCH, pollingIntervalSeconds: DELIVERY_POLL_SECONDS })

  const dispatcher = new Dispatcher(app.db, app.jobQueue)
  let retry: NodeJS.Timeout | undefined
  const dispatching: CoalescedTask = new CoalescedTask(async () => {
    try {
      let queued = 0
      for (;;) {
        const outcome = await dispatcher.dispatch()
        queued += outcome.queued
        if (outcome.state === 'waiting') retry = setTimeout(() => { dispatching.request() }, SETTLE_DELAY_MS).unref()
        if (outcome.state !== 'more') break
      }
      if (queued > 0) app.jobQueue.wake(DELIVERY_QUEUE)
    } catch (error) {
      app.log.warn({ err: error }, 'webhook dispatch failed; retrying at the next poll')
    }
  }, DISPATCH_INTERVAL_MS)

  let stopListening = () => {}
  let poll: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    stopListening = onEventsCommitted(app.db, () => { dispatching.request() })
    poll = setInterval(() => { dispatching.request() }, tuning.pollMs ?? 1_000).unref()
    dispatching.request()
  })
  app.addHook('onClose', async () => {
    stopListening()
    clearInterval(poll)
    clearTimeout(retry)
    await dispatching.stop()
    // Deliveries in progress end before their connections close.
    await app.jobQueue.stop()
    await client.close()
  })
}

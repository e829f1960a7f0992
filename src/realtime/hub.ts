import type { Executor } from '../db/client.js'
import { CoalescedTask } from '../lib/coalesced.js'
import type { SerializeEvent } from './messages.js'
import { newestEventId, readEvents, type StoredEvent } from './outbox.js'

/** A stored event on its way to subscribers, serialized once for all of them, per transport, when first needed. */
export class PublishedEvent {
  readonly id: number
  readonly topic: string
  readonly name: string
  readonly createdAt: Date
  private json: string | undefined
  private wsFrame: Buffer | undefined
  private sseFrame: Buffer | undefined

  constructor (private readonly event: StoredEvent, private readonly serialize: SerializeEvent) {
    this.id = event.id
    this.topic = event.topic
    this.name = event.name
    this.createdAt = event.createdAt
  }

  /** The `event` message, as JSON. */
  get message (): string {
    this.json ??= this.serialize(this.event)
    return this.json
  }

  /** The payload of a WebSocket text frame. */
  get frame (): Buffer {
    this.wsFrame ??= Buffer.from(this.message)
    return this.wsFrame
  }

  /** One Server-Sent Event, its `id:` the event id. */
  get sse (): Buffer {
    this.sseFrame ??= Buffer.from(`id: ${this.id}\ndata: ${this.message}\n\n`)
    return this.sseFrame
  }
}

/** Something that follows topics: a WebSocket or SSE client's subscriptions. */
export interface Subscriber {
  deliver (event: PublishedEvent): void
}

export interface HubOptions {
  /** Writes the `event` message of a stored event. */
  serialize: SerializeEvent
  /** Events read per query. */
  batchSize: number
  /** While a transaction that may still commit lower ids is running, read again this soon, unless woken sooner. */
  settleDelayMs: number
  /**
   * Reads start at least this far apart: under a stream of commits, each read takes what committed since the last one
   * (a read per commit would cost the database as much as the writes). A wake-up after a quiet spell reads at once.
   */
  minIntervalMs: number
  /** After each event is handed to this instance's subscribers (metrics). */
  onPublished?: (event: PublishedEvent, subscribers: number) => void
  /** A read failed (`failures` in a row); the next wake-up or poll tries again from the same place. */
  onError?: (error: unknown, failures: number) => void
}

/**
 * One per instance: reads new events from the outbox when woken (a notification, a commit of this instance, the
 * periodic poll) and hands each to the local subscribers of its topic. One read per wake-up however many clients
 * listen, and wake-ups during a read coalesce into one more read.
 *
 * Events are delivered in id order and never past an id a running transaction may still commit: a read that
 * finds newer events while writing transactions are running holds them back until those transactions have ended
 * (a later read tells), then delivers everything up to them. Without concurrent writers (PGlite, a quiet server)
 * every read delivers at once.
 */
export class Hub {
  /** The highest id delivered: every event up to it has been handed to the subscribers of its time. */
  position = 0
  /** Events up to this id are all visible: the transactions that could still have added lower ids have ended. */
  private settledThrough = 0
  /** Held-back events up to `upTo` become deliverable once every transaction in `running` has ended. */
  private pending: { upTo: number, running: string[] } | undefined
  private readonly topics = new Map<string, Set<Subscriber>>()
  private readonly reads: CoalescedTask
  private failures = 0
  private retry: NodeJS.Timeout | undefined
  private stopped = false

  constructor (private readonly db: Executor, private readonly options: HubOptions) {
    this.reads = new CoalescedTask(() => this.readAll().then(
      () => { this.failures = 0 },
      (error: unknown) => this.options.onError?.(error, ++this.failures)
    ), options.minIntervalMs)
  }

  /** A stored event (a replayed one, say) ready to send, serialized like the live ones. */
  published (event: StoredEvent): PublishedEvent {
    return new PublishedEvent(event, this.options.serialize)
  }

  /** Starts after the newest stored event: clients that want older ones replay them. */
  async start (): Promise<void> {
    this.position = await newestEventId(this.db)
    this.settledThrough = this.position
  }

  /** Waits for a read in progress, and reads no more. */
  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.retry)
    await this.reads.stop()
  }

  add (topic: string, subscriber: Subscriber): void {
    let set = this.topics.get(topic)
    if (set === undefined) this.topics.set(topic, set = new Set())
    set.add(subscriber)
  }

  remove (topic: string, subscriber: Subscriber): void {
    const set = this.topics.get(topic)
    set?.delete(subscriber)
    if (set?.size === 0) this.topics.delete(topic)
  }

  /** Reads what is new: now, or after the read in progress, and at most once per `minIntervalMs`. */
  wake (): void {
    clearTimeout(this.retry)
    this.reads.request()
  }

  private async readAll (): Promise<void> {
    for (;;) {
      const batch = await readEvents(this.db, this.position, this.options.batchSize, this.pending?.running ?? [])
      const newest = batch.events.at(-1)?.id ?? this.position
      if (this.pending !== undefined && batch.settled) {
        this.settledThrough = Math.max(this.settledThrough, this.pending.upTo)
        this.pending = undefined
      }
      // Nothing running: nothing can appear below what this read saw.
      if (batch.running.length === 0) this.settledThrough = Math.max(this.settledThrough, newest)
      let delivered = 0
      for (const event of batch.events) {
        if (event.id > this.settledThrough) break
        this.publish(this.published(event))
        delivered++
      }
      if (delivered < batch.events.length && this.pending === undefined) this.pending = { upTo: newest, running: batch.running }
      if (this.pending !== undefined) {
        this.retry = setTimeout(() => this.wake(), this.options.settleDelayMs)
        this.retry.unref()
        return
      }
      if (batch.events.length < this.options.batchSize || this.stopped) return
    }
  }

  private publish (event: PublishedEvent): void {
    this.position = event.id
    const subscribers = this.topics.get(event.topic)
    if (subscribers !== undefined) for (const subscriber of subscribers) subscriber.deliver(event)
    this.options.onPublished?.(event, subscribers?.size ?? 0)
  }
}

import type { Executor } from '../db/client.js'
import type { Hub, PublishedEvent, Subscriber } from './hub.js'
import { replayPage } from './outbox.js'

/** Where a client's events go: a WebSocket or an SSE stream. */
export interface EventSink {
  /** Sends an event; false when the client is gone, or was just dropped for falling too far behind. */
  send (event: PublishedEvent): boolean
  /** Whether the client has taken most of what was sent: a replay waits for it before sending more. */
  hasRoom (): boolean
  /** Resolves once the client has room again: true, or false when it went away first. */
  drained (): Promise<boolean>
}

export interface SubscriptionOptions {
  /** Events per replay query. */
  replayBatch: number
  /** Live events held while a replay runs; past it they are dropped and read from the table instead. */
  replayBuffer: number
}

/** A replay in progress: its topics' live events wait in `buffer` until the stored ones have been sent. */
interface Replay {
  topics: Set<string>
  buffer: PublishedEvent[]
  overflowed: boolean
}

/**
 * The topics one client follows, each with the id of the last event it got, so that a replay from `since` and
 * the live events arriving meanwhile join without a gap or a duplicate. Subscribe calls of one client must not
 * overlap (each transport handles a client's messages one at a time).
 */
export class Subscriptions implements Subscriber {
  /** Followed topics, each with the id of the last event sent on it. */
  private readonly cursors = new Map<string, number>()
  private replay: Replay | undefined
  private closed = false

  constructor (
    private readonly hub: Hub,
    private readonly db: Executor,
    private readonly sink: EventSink,
    private readonly options: SubscriptionOptions
  ) {}

  get topics (): string[] {
    return [...this.cursors.keys()]
  }

  deliver (event: PublishedEvent): void {
    const cursor = this.cursors.get(event.topic)
    if (cursor === undefined || this.closed) return
    const replay = this.replay
    if (replay?.topics.has(event.topic) === true) {
      if (replay.buffer.length < this.options.replayBuffer) replay.buffer.push(event)
      else replay.overflowed = true
      return
    }
    if (event.id <= cursor) return
    this.cursors.set(event.topic, event.id)
    this.sink.send(event)
  }

  /**
   * Follows `topics`. Without `since`, from now on: `live` is called and that is all. With it, every stored event
   * after `since` on these topics is sent first (`live` is called before them), then the live ones. Resolves false,
   * following nothing, when events after `since` have been pruned or `since` is not an id this database gave out.
   * A database error rejects, leaving these topics unfollowed.
   */
  async subscribe (topics: string[], since: number | undefined, live: () => void): Promise<boolean> {
    if (since === undefined) {
      for (const topic of topics) this.follow(topic, this.cursors.get(topic) ?? this.hub.position)
      live()
      return true
    }
    const replay: Replay = { topics: new Set(topics), buffer: [], overflowed: false }
    this.replay = replay
    for (const topic of topics) this.follow(topic, since)
    try {
      // Stored events up to what the hub has delivered; the buffer holds everything it delivers after that.
      let upTo = this.hub.position
      let after = since
      for (let first = true; ; first = false) {
        const page = await replayPage(this.db, topics, after, upTo, this.options.replayBatch)
        if (page.prunedThrough > after || (first && since > Math.max(page.newest, page.prunedThrough))) {
          this.unsubscribe(topics)
          return false
        }
        if (first) live()
        for (const stored of page.events) {
          if (!this.sink.hasRoom() && !await this.sink.drained()) return true
          if (this.closed) return true
          this.cursors.set(stored.topic, stored.id)
          this.sink.send(this.hub.published(stored))
        }
        after = page.events.at(-1)?.id ?? after
        if (page.events.length === this.options.replayBatch) continue
        if (!replay.overflowed) break
        // Live events were dropped: they are in the table, up to where the hub is now.
        replay.overflowed = false
        replay.buffer = []
        upTo = this.hub.position
      }
      this.replay = undefined
      for (const event of replay.buffer) this.deliver(event)
      return true
    } catch (error) {
      this.unsubscribe(topics)
      throw error
    } finally {
      if (this.replay === replay) this.replay = undefined
    }
  }

  unsubscribe (topics: string[]): void {
    for (const topic of topics) {
      this.cursors.delete(topic)
      this.hub.remove(topic, this)
    }
  }

  close (): void {
    this.closed = true
    this.unsubscribe(this.topics)
  }

  private follow (topic: string, cursor: number): void {
    this.cursors.set(topic, cursor)
    this.hub.add(topic, this)
  }
}

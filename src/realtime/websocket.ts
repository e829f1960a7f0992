import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import WebSocket from 'ws'
import type { ErrorCode } from '../../schemas/events.js'
import type { ClientMessage, ServerMessage } from '../../schemas/ws.js'
import type { Connection, Identity, IdentityEnd } from './connections.js'
import type { PublishedEvent } from './hub.js'
import { forbiddenTopics, TokenBucket, type Parsed } from './messages.js'
import type { EventSink, Subscriptions } from './subscriptions.js'

/** Close codes (RFC 6455 §7.4.1). */
export const CLOSE = { goingAway: 1001, policy: 1008, tooBig: 1009, tryAgainLater: 1013 } as const

export interface WebSocketLimits {
  /** Unsent bytes a client may leave behind; past it the client is too slow and is closed with 1013. */
  maxBufferedBytes: number
  /** Messages a client may send per second, on average... */
  messagesPerSecond: number
  /** ...and at once. */
  messageBurst: number
  /** Messages dropped for the rate that are tolerated (refilled at a tenth of the rate); past them, close 1008. */
  droppedAllowance: number
}

export interface WebSocketClientContext {
  limits: WebSocketLimits
  parse: (data: Buffer, isBinary: boolean) => Parsed
  subscriptions: (sink: EventSink) => Subscriptions
  log: FastifyBaseLogger
  /** After each event sent (metrics). */
  onDelivered: () => void
  onClose: (client: WebSocketClient) => void
}

const DRAIN_POLL_MS = 20

/**
 * One WebSocket client: its messages validated and handled one at a time (a replay finishes before the next
 * message is read), its subscriptions, and the limits that keep one client from costing the server too much.
 */
export class WebSocketClient implements Connection, EventSink {
  readonly transport = 'websocket'
  private readonly subscriptions: Subscriptions
  private readonly rate: TokenBucket
  private readonly dropped: TokenBucket
  private handling = Promise.resolve()
  private alive = true
  private lastRateError = 0

  constructor (private readonly socket: WebSocket, readonly principal: Identity | null, private readonly context: WebSocketClientContext) {
    const { limits } = context
    this.subscriptions = context.subscriptions(this)
    this.rate = new TokenBucket(limits.messageBurst, limits.messagesPerSecond)
    this.dropped = new TokenBucket(limits.droppedAllowance, limits.messagesPerSecond / 10)
    socket.on('message', (data: Buffer, isBinary) => this.receive(data, isBinary))
    socket.on('pong', () => { this.alive = true })
    socket.on('close', () => {
      this.subscriptions.close()
      context.onClose(this)
    })
  }

  // EventSink

  send (event: PublishedEvent): boolean {
    if (this.socket.readyState !== WebSocket.OPEN) return false
    if (this.socket.bufferedAmount > this.context.limits.maxBufferedBytes) {
      this.socket.close(CLOSE.tryAgainLater, 'Too slow: too many unread events')
      return false
    }
    this.socket.send(event.frame, { binary: false })
    this.context.onDelivered()
    return true
  }

  hasRoom (): boolean {
    return this.socket.bufferedAmount < this.context.limits.maxBufferedBytes / 2
  }

  async drained (): Promise<boolean> {
    while (this.socket.readyState === WebSocket.OPEN) {
      if (this.hasRoom()) return true
      await sleep(DRAIN_POLL_MS)
    }
    return false
  }

  // Connection

  end (code: IdentityEnd, reason: string): void {
    if (this.socket.readyState !== WebSocket.OPEN) return
    this.error(code, `${reason}: reconnect with a fresh token and since`)
    this.socket.close(CLOSE.policy, reason)
  }

  heartbeat (): void {
    if (!this.alive) {
      this.socket.terminate()
      return
    }
    this.alive = false
    if (this.socket.readyState === WebSocket.OPEN) this.socket.ping()
  }

  shutdown (): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close(CLOSE.goingAway, 'The server is shutting down')
  }

  destroy (): void {
    this.socket.terminate()
  }

  // Messages

  private receive (data: Buffer, isBinary: boolean): void {
    if (!this.rate.take()) {
      this.limited()
      return
    }
    const parsed = this.context.parse(data, isBinary)
    if ('invalid' in parsed) {
      this.error('invalid_message', parsed.invalid)
      return
    }
    this.handling = this.handling.then(() => this.handle(parsed.message)).catch((error: unknown) => {
      this.context.log.warn({ err: error }, 'WebSocket message failed')
      this.error('unavailable', 'The events could not be read just now: retry')
    })
  }

  private async handle (message: ClientMessage): Promise<void> {
    switch (message.type) {
      case 'echo':
        return this.reply({ type: 'echo', data: message.data })
      case 'ping':
        return this.reply({ type: 'pong' })
      case 'subscribe': {
        const { topics } = message
        const forbidden = forbiddenTopics(this.principal, topics)
        if (forbidden !== undefined) return this.error('forbidden_topic', forbidden)
        const since = message.since === undefined ? undefined : Number(message.since)
        const subscribed = await this.subscriptions.subscribe(topics, since, () => this.reply({ type: 'subscribed', topics }))
        if (!subscribed) {
          this.error('resync_required', `Events after ${String(message.since)} are no longer kept: reload, then subscribe without since`)
        }
        return
      }
      case 'unsubscribe':
        this.subscriptions.unsubscribe(message.topics)
        return this.reply({ type: 'unsubscribed', topics: message.topics })
    }
  }

  /** A message over the rate is dropped; the client hears of it at most once a second, and is closed if it keeps on. */
  private limited (): void {
    if (!this.dropped.take()) {
      this.socket.close(CLOSE.policy, 'Too many messages')
      return
    }
    const now = Date.now()
    if (now - this.lastRateError < 1000) return
    this.lastRateError = now
    this.error('rate_limited', `More than ${this.context.limits.messagesPerSecond} messages a second: this one was dropped`)
  }

  private error (code: ErrorCode, message: string): void {
    this.reply({ type: 'error', code, message })
  }

  private reply (message: ServerMessage): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message))
  }
}

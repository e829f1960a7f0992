import type { ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ErrorMessage } from '../../schemas/events.js'
import type { Connection, Identity, IdentityEnd } from './connections.js'
import type { PublishedEvent } from './hub.js'
import type { EventSink } from './subscriptions.js'

/** How long a reconnecting `EventSource` waits (its `retry:`). */
const RETRY_MS = 2_000
const DRAIN_POLL_MS = 20

export interface SseClientContext {
  /** Unsent bytes a client may leave behind; past it the client is too slow and its stream is cut. */
  maxBufferedBytes: number
  onDelivered: () => void
  onClose: (client: SseClient) => void
}

/** One Server-Sent Events stream: events as `id:` and `data:` lines, errors as `data:` only, comments to keep it alive. */
export class SseClient implements Connection, EventSink {
  readonly transport = 'sse'
  private closed = false

  constructor (private readonly response: ServerResponse, readonly principal: Identity | null, private readonly context: SseClientContext) {
    // The request body was read long ago; the response's close is when the client goes away.
    response.on('close', () => {
      this.closed = true
      context.onClose(this)
    })
    response.write(`retry: ${RETRY_MS}\n\n`)
  }

  get isOpen (): boolean {
    return !this.closed && !this.response.writableEnded
  }

  send (event: PublishedEvent): boolean {
    if (!this.isOpen) return false
    if (this.response.writableLength > this.context.maxBufferedBytes) {
      this.response.destroy()
      return false
    }
    this.response.write(event.sse)
    this.context.onDelivered()
    return true
  }

  hasRoom (): boolean {
    return this.response.writableLength < this.context.maxBufferedBytes / 2
  }

  async drained (): Promise<boolean> {
    while (this.isOpen) {
      if (this.hasRoom()) return true
      await sleep(DRAIN_POLL_MS)
    }
    return false
  }

  /** An error message, without an `id:` (the client's last event id stays what it was). */
  error (code: ErrorMessage['code'], message: string): void {
    if (this.isOpen) this.response.write(`data: ${JSON.stringify({ type: 'error', code, message } satisfies ErrorMessage)}\n\n`)
  }

  /** A comment line: ignored by clients, it tells a proxy the stream is alive. */
  comment (text: string): void {
    if (this.isOpen) this.response.write(`: ${text}\n\n`)
  }

  end (code: IdentityEnd, reason: string): void {
    this.error(code, `${reason}: reconnect with a fresh token and lastEventId`)
    this.response.end()
  }

  heartbeat (): void {
    this.comment('keep-alive')
  }

  shutdown (): void {
    this.response.end()
  }

  destroy (): void {
    this.response.destroy()
  }
}

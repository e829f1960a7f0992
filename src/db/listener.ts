import type { FastifyBaseLogger } from 'fastify'
import pg from 'pg'

const RECONNECT_MIN_MS = 250
const RECONNECT_MAX_MS = 5_000

/** A channel name as an SQL identifier (LISTEN takes no parameters). */
const identifier = (channel: string) => `"${channel.replaceAll('"', '""')}"`

/**
 * LISTEN on a connection of its own, outside the pool: a pooled client would be handed to other work, and a
 * pooler in transaction mode (PgBouncer) does not pass notifications at all. When the connection drops it
 * reconnects with a growing delay, and calls `onNotify` once it is back, since notifications sent meanwhile are lost.
 */
export class PgListener {
  private client: pg.Client | undefined
  private closed = false
  /** Set while the connection is down: an outage is logged when it starts and when it ends, not at every retry. */
  private down = false
  private delay = RECONNECT_MIN_MS
  private timer: NodeJS.Timeout | undefined

  constructor (
    private readonly connectionString: string,
    private readonly channel: string,
    private readonly onNotify: () => void,
    private readonly log: FastifyBaseLogger
  ) {}

  /** Connects; a failure is logged and retried in the background (the caller's periodic read covers the gap). */
  async start (): Promise<void> {
    await this.connect()
  }

  /** Sends a notification on this connection; false when it is down or fails (the caller then sends it another way). */
  async notify (): Promise<boolean> {
    const client = this.client
    if (client === undefined) return false
    return await client.query('select pg_notify($1, $2)', [this.channel, '']).then(() => true, () => false)
  }

  async stop (): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    const client = this.client
    this.client = undefined
    await client?.end().catch(() => undefined)
  }

  private async connect (): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString, keepAlive: true, connectionTimeoutMillis: 5_000, application_name: 'catalog-api listener' })
    // Without an error listener a dropped connection would take the process down; `end` follows and reconnects.
    client.on('error', (error) => this.failed(error))
    client.on('notification', () => this.onNotify())
    client.on('end', () => {
      if (this.client !== client) return
      this.client = undefined
      this.reconnectLater()
    })
    try {
      await client.connect()
      await client.query(`listen ${identifier(this.channel)}`)
    } catch (error) {
      this.failed(error as Error)
      await client.end().catch(() => undefined)
      this.reconnectLater()
      return
    }
    if (this.closed) {
      await client.end()
      return
    }
    if (this.down) this.log.info({ channel: this.channel }, 'LISTEN connection back')
    this.down = false
    this.client = client
    this.delay = RECONNECT_MIN_MS
    // Whatever was announced while not listening (before the first connection too) is read now.
    this.onNotify()
  }

  private failed (error: Error): void {
    if (!this.down) this.log.warn({ reason: error.message, channel: this.channel }, 'LISTEN connection lost; reconnecting')
    this.down = true
  }

  private reconnectLater (): void {
    if (this.closed) return
    const delay = this.delay
    this.delay = Math.min(delay * 2, RECONNECT_MAX_MS)
    this.timer = setTimeout(() => { this.connect().catch(() => undefined) }, delay)
    this.timer.unref()
  }
}

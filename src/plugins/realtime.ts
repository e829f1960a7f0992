import websocket from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram } from 'prom-client'
import { BEARER_PROTOCOL, MAX_MESSAGE_BYTES } from '../../schemas/ws.js'
import type { Config } from '../config.js'
import { Connections, type LiveSessions, type Transport } from '../realtime/connections.js'
import { CoalescedTask } from '../lib/coalesced.js'
import { Hub } from '../realtime/hub.js'
import { eventSerializer } from '../realtime/messages.js'
import { EVENTS_CHANNEL, onEventsCommitted, pruneEvents } from '../realtime/outbox.js'
import { Subscriptions, type EventSink } from '../realtime/subscriptions.js'
import type { WebSocketLimits } from '../realtime/websocket.js'

export interface RealtimeOptions {
  /** The slow poll that catches up on lost notifications (default 3 s). */
  pollIntervalMs?: number
  /** How often expired tokens and ended logins close their connections (default 2 s). */
  identityCheckMs?: number
  /** WebSocket pings; a peer that has not answered the previous one is dropped (default 30 s). */
  pingIntervalMs?: number
  /** SSE comment lines (default 15 s). */
  sseKeepAliveMs?: number
  /** How often events older than EVENTS_RETENTION are deleted (default a quarter of it, at most 10 min). */
  pruneIntervalMs?: number
  /** On shutdown, how long clients get to answer the close before their connections are cut (default 1 s). */
  shutdownGraceMs?: number
  /** Per-client limits; see `WebSocketLimits` (SSE uses `maxBufferedBytes`). */
  limits?: Partial<WebSocketLimits>
  /** Events per replay query (default 500), and live events held back during a replay (default 10,000). */
  replayBatch?: number
  replayBuffer?: number
}

export interface Realtime {
  hub: Hub
  connections: Connections
  limits: WebSocketLimits
  /** The subscriptions of one client, delivering to `sink`. */
  subscriptions (sink: EventSink): Subscriptions
  /** Counts an event sent to a client. */
  delivered (transport: Transport): void
  /** Deletes the events older than EVENTS_RETENTION now (the background job does it periodically). */
  prune (): Promise<number>
}

declare module 'fastify' {
  interface FastifyInstance {
    realtime: Realtime
  }
}

/** Reads of the outbox, and notifications to other instances, are at least this far apart under a stream of commits. */
const READ_INTERVAL_MS = 5

const DEFAULT_LIMITS: WebSocketLimits = { maxBufferedBytes: 1_048_576, messagesPerSecond: 20, messageBurst: 40, droppedAllowance: 100 }

/**
 * The live channel's engine: the outbox read by one hub per instance, woken by Postgres notifications from every
 * instance (and by this instance's own commits at once), with a slow poll behind them; the open WebSocket and SSE
 * connections, checked against their logins, kept alive and closed on shutdown; pruning; metrics.
 */
export default fp(async function realtime (app: FastifyInstance, { config, options = {}, liveSessions }: {
  config: Config
  options?: RealtimeOptions
  /** Which logins have not ended: open connections whose login has are closed. */
  liveSessions: LiveSessions
}) {
  const limits: WebSocketLimits = { ...DEFAULT_LIMITS, ...options.limits }
  const intervals = {
    poll: options.pollIntervalMs ?? 3_000,
    identity: options.identityCheckMs ?? 2_000,
    ping: options.pingIntervalMs ?? 30_000,
    sse: options.sseKeepAliveMs ?? 15_000,
    prune: options.pruneIntervalMs ?? Math.min(config.EVENTS_RETENTION / 4, 10 * 60_000)
  }

  const published = new Counter({ name: 'realtime_events_published_total', help: 'Events read from the outbox and handed to this instance\'s subscribers', labelNames: ['name'], registers: [app.metrics] })
  const deliveredEvents = new Counter({ name: 'realtime_events_delivered_total', help: 'Event messages sent to clients, replays included', labelNames: ['transport'], registers: [app.metrics] })
  // Bound once: counted for every subscriber of every event.
  const deliveredBy: Record<Transport, Counter.Internal> = { websocket: deliveredEvents.labels('websocket'), sse: deliveredEvents.labels('sse') }
  const lag = new Histogram({
    name: 'realtime_delivery_lag_seconds',
    help: 'From an event\'s commit to its sending to this instance\'s live subscribers',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [app.metrics]
  })

  const hub = new Hub(app.db, {
    serialize: eventSerializer(),
    batchSize: 500,
    settleDelayMs: 10,
    minIntervalMs: READ_INTERVAL_MS,
    onPublished: (event, subscribers) => {
      published.inc({ name: event.name })
      if (subscribers > 0) lag.observe(Math.max(0, Date.now() - event.createdAt.getTime()) / 1000)
    },
    onError: (error, failures) => {
      // Once per outage, not once per poll.
      if (failures === 1) app.log.warn({ err: error }, 'could not read events; retrying')
    }
  })
  const connections = new Connections(liveSessions)
  const replay = { replayBatch: options.replayBatch ?? 500, replayBuffer: options.replayBuffer ?? 10_000 }
  const prune = () => pruneEvents(app.db, new Date(Date.now() - config.EVENTS_RETENTION))

  app.metrics.registerMetric(new Gauge({
    name: 'realtime_connections',
    help: 'Open WebSocket connections and SSE streams',
    labelNames: ['transport'],
    registers: [],
    collect () {
      this.set({ transport: 'websocket' }, connections.count('websocket'))
      this.set({ transport: 'sse' }, connections.count('sse'))
    }
  }))

  await app.register(websocket, {
    options: {
      maxPayload: MAX_MESSAGE_BYTES,
      // A client authenticating with the `bearer, <token>` pair gets `bearer` back, as the protocol requires.
      handleProtocols: (protocols) => protocols.has(BEARER_PROTOCOL) ? BEARER_PROTOCOL : false
    },
    // Protocol errors (a frame past maxPayload, invalid UTF-8) close the socket with their own code already.
    errorHandler: (error, _socket, request) => { request.log.debug({ err: error }, 'WebSocket error') },
    // Every connection, WebSocket or SSE, is closed with the others below.
    preClose: (done) => { done() }
  })

  app.decorate('realtime', {
    hub,
    connections,
    limits,
    subscriptions: (sink) => new Subscriptions(hub, app.db, sink, replay),
    delivered: (transport) => { deliveredBy[transport].inc() },
    prune
  } satisfies Realtime)

  const timers: NodeJS.Timeout[] = []
  const every = (ms: number, task: () => unknown) => {
    const timer = setInterval(task, ms)
    timer.unref()
    timers.push(timer)
  }
  const background = (what: string, task: () => Promise<unknown>) => () => {
    task().catch((error: unknown) => app.log.warn({ err: error }, `could not ${what}`))
  }

  // One NOTIFY in flight at a time, and at most one per READ_INTERVAL_MS: the commits made meanwhile, however many,
  // are announced by the next one.
  const announcements = new CoalescedTask(() => app.database.notify(EVENTS_CHANNEL)
    .catch((error: unknown) => { app.log.warn({ err: error }, 'could not announce events; other instances will poll') }), READ_INTERVAL_MS)

  let unlisten: (() => Promise<void>) | undefined
  let ignoreCommits: (() => void) | undefined
  app.addHook('onReady', async () => {
    await hub.start()
    ignoreCommits = onEventsCommitted(app.db, () => {
      hub.wake()
      announcements.request()
    })
    unlisten = await app.database.listen(EVENTS_CHANNEL, () => hub.wake())
    every(intervals.poll, () => hub.wake())
    every(intervals.identity, background('check the logins of open connections', () => connections.checkIdentities(app.db)))
    every(intervals.ping, () => connections.heartbeat('websocket'))
    every(intervals.sse, () => connections.heartbeat('sse'))
    every(intervals.prune, background('prune old events', prune))
  })

  app.addHook('preClose', async () => {
    for (const timer of timers) clearInterval(timer)
    ignoreCommits?.()
    await connections.shutdown(options.shutdownGraceMs ?? 1_000)
    app.websocketServer.close()
  })

  app.addHook('onClose', async () => {
    await unlisten?.()
    await hub.stop()
    // A notification sent at the last moment must not meet a closed database.
    await announcements.stop()
  })
}, { name: 'realtime', dependencies: ['db', 'metrics'] })

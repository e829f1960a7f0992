import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { streamEvents } from '../../schemas/events.js'
import { BEARER_PROTOCOL, connectWebSocket, WS_PATH } from '../../schemas/ws.js'
import type { ResourceOptions } from '../kit/resource.js'
import { forbidden, HttpProblem } from '../lib/problem.js'
import { forbiddenTopics, messageParser } from '../realtime/messages.js'
import { SseClient } from '../realtime/sse.js'
import { WebSocketClient } from '../realtime/websocket.js'

/** The token of a `Sec-WebSocket-Protocol: bearer, <token>` offer. */
function protocolToken (header: string | undefined): string | undefined {
  const offered = (header ?? '').split(',').map((protocol) => protocol.trim())
  const at = offered.indexOf(BEARER_PROTOCOL)
  return at === -1 ? undefined : offered[at + 1]
}

/** The `access_token` query parameter, when given once. */
function queryToken (request: FastifyRequest): string | undefined {
  const token = (request.query as { access_token?: unknown } | undefined)?.access_token
  return typeof token === 'string' && token !== '' ? token : undefined
}

/** The WebSocket channel and its Server-Sent Events twin. */
const events: FastifyPluginAsyncTypebox<ResourceOptions> = async (app, { config }) => {
  const { realtime } = app
  const allowedOrigins = new Set(config.CORS_ORIGINS)
  const parse = messageParser()

  /**
   * Clients that cannot send an `Authorization` header (browsers' WebSocket and EventSource) pass their token as
   * `access_token`, or as the `bearer, <token>` subprotocol pair. A bad token is a 401 before any upgrade.
   */
  const authenticateConnection = async (request: FastifyRequest) => {
    if (request.user !== null) return
    const token = queryToken(request) ?? protocolToken(request.headers['sec-websocket-protocol'])
    if (token !== undefined) request.user = await app.authenticate(token)
  }

  /** A page of another site must not open sockets with its visitor's token: only our own origin and CORS_ORIGINS. */
  const checkOrigin = async (request: FastifyRequest) => {
    const origin = request.headers.origin
    if (origin === undefined || allowedOrigins.has(origin)) return
    if (URL.canParse(origin) && new URL(origin).host === request.host) return
    throw forbidden(`WebSocket connections from ${origin} are not allowed`, { code: 'origin-not-allowed' })
  }

  app.route({
    method: 'GET',
    url: '/ws',
    schema: connectWebSocket,
    onRequest: [checkOrigin, authenticateConnection],
    handler: async () => {
      throw new HttpProblem(426, `${WS_PATH} is a WebSocket endpoint: connect with a WebSocket client (see /asyncapi.json)`, {
        code: 'upgrade-required',
        headers: { upgrade: 'websocket' }
      })
    },
    wsHandler: (socket, request) => {
      const client: WebSocketClient = new WebSocketClient(socket, request.user, {
        limits: realtime.limits,
        parse,
        subscriptions: (sink) => realtime.subscriptions(sink),
        log: request.log,
        onDelivered: () => realtime.delivered('websocket'),
        onClose: () => realtime.connections.delete(client)
      })
      realtime.connections.add(client)
    }
  })

  app.get('/events', { schema: streamEvents, onRequest: authenticateConnection }, async (request, reply) => {
    const topics = [...new Set(request.query.topics.split(','))]
    const refused = forbiddenTopics(request.user, topics)
    if (refused !== undefined) throw forbidden(refused, { code: 'forbidden-topic' })
    const lastEventId = request.headers['last-event-id'] ?? request.query.lastEventId
    const since = lastEventId === undefined ? undefined : Number(lastEventId)

    reply.hijack()
    const headers = Object.fromEntries(Object.entries(reply.getHeaders()).filter(([, value]) => value !== undefined))
    reply.raw.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // Tells nginx not to buffer the stream.
      'x-accel-buffering': 'no'
    })
    // An open stream is idle between events: the server's inactivity timeout must not cut it.
    request.raw.socket.setTimeout(0)

    const client: SseClient = new SseClient(reply.raw, request.user, {
      maxBufferedBytes: realtime.limits.maxBufferedBytes,
      onDelivered: () => realtime.delivered('sse'),
      onClose: () => {
        subscriptions.close()
        realtime.connections.delete(client)
      }
    })
    const subscriptions = realtime.subscriptions(client)
    realtime.connections.add(client)
    const following = () => client.comment(`following ${topics.join(',')}`)
    try {
      if (!await subscriptions.subscribe(topics, since, following)) {
        client.error('resync_required', `Events after ${String(lastEventId)} are no longer kept: reload what you show; live events follow`)
        await subscriptions.subscribe(topics, undefined, following)
      }
    } catch (error) {
      request.log.warn({ err: error }, 'could not start an event stream')
      client.error('unavailable', 'The events could not be read just now: reconnect shortly')
      client.shutdown()
    }
  })
}

export default events

import type { TSchema } from '@sinclair/typebox'
import { API_PREFIX } from '../../schemas/common.js'
import { ErrorMessageSchema, EventMessageSchemas, eventsComponents } from '../../schemas/events.js'
import {
  BEARER_PROTOCOL, EchoMessageSchema, MAX_MESSAGE_BYTES, PingMessageSchema, PongMessageSchema, SubscribedMessageSchema, SubscribeMessageSchema,
  UnsubscribedMessageSchema, UnsubscribeMessageSchema, WS_PATH, WsQuerySchema, wsComponents
} from '../../schemas/ws.js'
import { published } from '../lib/validation.js'
import { packageInfo } from '../paths.js'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

const schemaRef = (id: string) => `#/components/schemas/${id}`

/** A TypeBox schema as an AsyncAPI component: references to other components by their JSON pointer, no `$id`. */
function component (value: unknown): Json {
  if (Array.isArray(value)) return value.map(component)
  if (value === null || typeof value !== 'object') return value as Json
  const copy: { [key: string]: Json } = {}
  for (const [key, child] of Object.entries(published(value))) {
    if (key === '$id') continue
    copy[key] = key === '$ref' && typeof child === 'string' ? schemaRef(child) : component(child)
  }
  return copy
}

const id = (schema: TSchema) => schema.$id ?? ''
/** `ItemCreatedEvent` → `itemCreatedEvent`, `EchoMessage` → `echo`: the key of a message in the document. */
const messageKey = (schema: TSchema) => {
  const name = id(schema).replace(/Message$/, '')
  return name.charAt(0).toLowerCase() + name.slice(1)
}

function message (schema: TSchema): Json {
  const { title, description, examples } = schema as { title?: string, description?: string, examples?: unknown[] }
  return {
    name: messageKey(schema),
    title: title ?? id(schema),
    summary: description ?? '',
    contentType: 'application/json',
    payload: { $ref: schemaRef(id(schema)) },
    ...(examples === undefined ? {} : { examples: examples.map((payload) => ({ payload: component(payload) })) })
  }
}

const channelMessage = (schema: TSchema, channel = 'live') => ({ $ref: `#/channels/${channel}/messages/${messageKey(schema)}` })
const channelMessages = (schemas: TSchema[]) =>
  Object.fromEntries(schemas.map((schema) => [messageKey(schema), { $ref: `#/components/messages/${messageKey(schema)}` }]))

const channel = { $ref: '#/channels/live' }
const host = { host: { default: '127.0.0.1:3000', description: 'Host and port of the API' } }

/**
 * The AsyncAPI 3.0 document of the WebSocket channel and of its Server-Sent Events twin, made from the same TypeBox
 * schemas that validate the client's messages and serialize the server's: operations from the server's point of
 * view (it receives `subscribe`, it sends `event`).
 */
export function asyncApiDocument (): Json {
  const clientMessages = [EchoMessageSchema, PingMessageSchema, SubscribeMessageSchema, UnsubscribeMessageSchema]
  const serverMessages = [PongMessageSchema, SubscribedMessageSchema, UnsubscribedMessageSchema, ...EventMessageSchemas, ErrorMessageSchema]
  const messages = [...new Set([...clientMessages, ...serverMessages])]
  const streamMessages = [...EventMessageSchemas, ErrorMessageSchema]
  const schemas = [...new Set([...eventsComponents, ...wsComponents])]
  const request = (name: string, summary: string, sent: TSchema, reply: TSchema) => [name, {
    action: 'receive',
    channel,
    summary,
    messages: [channelMessage(sent)],
    reply: { channel, messages: [channelMessage(reply)] }
  }] as const
  return {
    asyncapi: '3.0.0',
    info: {
      title: `${packageInfo.name} live channel`,
      version: packageInfo.version,
      description: 'Live events of the catalog over a WebSocket: follow topics, get every change as it commits, and ' +
        'replay what you missed with `since`. Every message is a JSON object with a `type`, validated on receipt; an invalid ' +
        'one is answered by an `error` and the connection stays open.\n\n' +
        `Authentication: an access token as the \`access_token\` query parameter, or the subprotocol pair \`${BEARER_PROTOCOL}, <token>\` ` +
        `(the server then selects \`${BEARER_PROTOCOL}\`), or \`Authorization: Bearer\` where the client can send headers. ` +
        'A bad token is refused with 401 before the upgrade; without one, a client may follow public topics only. ' +
        'A browser page of another origin than this server and `CORS_ORIGINS` is refused with 403.\n\n' +
        `Limits and close codes: a message over ${MAX_MESSAGE_BYTES / 1024} KiB closes the connection with 1009; too many messages ` +
        'are answered by `rate_limited` and dropped, and a client that keeps on is closed with 1008; a client too slow to take its ' +
        'events is closed with 1013; when the token expires or its login ends the server sends `token_expired` or `login_ended`, then ' +
        'closes with 1008 (reconnect with a fresh token and `since`); on shutdown every connection gets 1001. The server pings every 30 s ' +
        'and drops peers that do not answer.\n\nThe same events are served as Server-Sent Events at `GET /api/v1/events?topics=…` ' +
        '(the `events` channel; its HTTP side is in `/openapi.json`): each SSE event has `id:` set to the event id and `data:` ' +
        'the message as JSON; a reconnect with `Last-Event-ID` replays what came after it.',
      license: { name: 'MIT', url: 'https://spdx.org/licenses/MIT.html' },
      contact: packageInfo.author
    },
    defaultContentType: 'application/json',
    servers: {
      websocket: {
        host: '{host}',
        protocol: 'ws',
        description: 'This server; `wss` behind TLS',
        variables: host,
        security: [
          { $ref: '#/components/securitySchemes/accessTokenQuery' },
          { $ref: '#/components/securitySchemes/bearerSubprotocol' },
          { $ref: '#/components/securitySchemes/bearerHeader' }
        ]
      },
      http: {
        host: '{host}',
        protocol: 'http',
        description: 'This server, for Server-Sent Events; `https` behind TLS',
        variables: host,
        security: [{ $ref: '#/components/securitySchemes/accessTokenQuery' }, { $ref: '#/components/securitySchemes/bearerHeader' }]
      }
    },
    channels: {
      live: {
        address: WS_PATH,
        title: 'Live events (WebSocket)',
        description: 'One connection, any number of topics.',
        servers: [{ $ref: '#/servers/websocket' }],
        messages: channelMessages(messages),
        bindings: { ws: { method: 'GET', query: component(WsQuerySchema), bindingVersion: '0.1.0' } }
      },
      events: {
        address: `${API_PREFIX}/events`,
        title: 'Live events (Server-Sent Events)',
        description: 'A `text/event-stream` of the topics named by `?topics=`, for clients that cannot keep a WebSocket.',
        servers: [{ $ref: '#/servers/http' }],
        messages: channelMessages(streamMessages)
      }
    },
    operations: Object.fromEntries([
      request('echo', 'Sends `data` back unchanged', EchoMessageSchema, EchoMessageSchema),
      request('ping', 'Answers `pong`', PingMessageSchema, PongMessageSchema),
      request('subscribe', 'Follows topics, replaying from `since` first when given', SubscribeMessageSchema, SubscribedMessageSchema),
      request('unsubscribe', 'Stops following topics', UnsubscribeMessageSchema, UnsubscribedMessageSchema),
      ['sendEvent', { action: 'send', channel, summary: 'A stored event on a followed topic, live or replayed', messages: EventMessageSchemas.map((schema) => channelMessage(schema)) }],
      ['sendError', { action: 'send', channel, summary: 'A message could not be handled, or the connection is about to close', messages: [channelMessage(ErrorMessageSchema)] }],
      ['streamEvents', {
        action: 'send',
        channel: { $ref: '#/channels/events' },
        summary: 'Every stored event on the topics asked for, after `Last-Event-ID` when given, then live ones',
        messages: streamMessages.map((schema) => channelMessage(schema, 'events'))
      }]
    ]),
    components: {
      schemas: Object.fromEntries(schemas.map((schema) => [id(schema), component(schema)])),
      messages: Object.fromEntries(messages.map((schema) => [messageKey(schema), message(schema)])),
      securitySchemes: {
        accessTokenQuery: { type: 'httpApiKey', in: 'query', name: 'access_token', description: 'An access token from `POST /api/v1/auth/token`' },
        bearerSubprotocol: {
          type: 'httpApiKey',
          in: 'header',
          name: 'Sec-WebSocket-Protocol',
          description: `Browsers: \`new WebSocket(url, ['${BEARER_PROTOCOL}', accessToken])\`; the server selects \`${BEARER_PROTOCOL}\``
        },
        bearerHeader: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: '`Authorization: Bearer <access token>`, for clients that can send headers' }
      }
    }
  }
}

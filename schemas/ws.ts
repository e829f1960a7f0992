import { Type, type Static, type TProperties } from '@sinclair/typebox'
import { API_PREFIX, Ref, StrictObject } from './common.js'
import { ErrorMessageSchema, EventIdSchema, EventMessageSchema, TopicListSchema } from './events.js'

/** The path of the WebSocket channel. */
export const WS_PATH = `${API_PREFIX}/ws`
/** The subprotocol a client offers, followed by its access token, to authenticate without a query parameter. */
export const BEARER_PROTOCOL = 'bearer'
/** Largest message a client may send; a bigger frame closes the connection with 1009. */
export const MAX_MESSAGE_BYTES = 65_536

const message = <T extends TProperties>(id: string, description: string, properties: T, examples: unknown[]) =>
  StrictObject(properties, { $id: id, title: id, description, examples })

export const EchoMessageSchema = message('EchoMessage', 'Client → server: send `data` and get it back unchanged in an `echo` of the server. ' +
  'Server → client: that echo.', {
  type: Type.Literal('echo'),
  data: Type.Unknown({ description: 'Any JSON value' })
}, [{ type: 'echo', data: { hello: 'world' } }])

export const PingMessageSchema = message('PingMessage', 'Client → server: answered by a `pong`.', { type: Type.Literal('ping') }, [{ type: 'ping' }])

export const PongMessageSchema = message('PongMessage', 'Server → client: the answer to a `ping`.', { type: Type.Literal('pong') }, [{ type: 'pong' }])

export const SubscribeMessageSchema = message('SubscribeMessage', 'Client → server: follow topics. Answered by `subscribed` once the ' +
  'subscription is live. With `since`, every stored event after that id on these topics follows first, then live events, ' +
  'with no gap and no duplicate; a `since` older than the events kept is answered by a `resync_required` error instead.', {
  type: Type.Literal('subscribe'),
  topics: TopicListSchema,
  since: Type.Optional(EventIdSchema)
}, [{ type: 'subscribe', topics: ['items'] }, { type: 'subscribe', topics: ['items'], since: '1042' }])

export const SubscribedMessageSchema = message('SubscribedMessage', 'Server → client: the topics are followed from now on ' +
  '(replayed events, if `since` was given, follow this message).', {
  type: Type.Literal('subscribed'),
  topics: TopicListSchema
}, [{ type: 'subscribed', topics: ['items'] }])

export const UnsubscribeMessageSchema = message('UnsubscribeMessage', 'Client → server: stop following topics.', {
  type: Type.Literal('unsubscribe'),
  topics: TopicListSchema
}, [{ type: 'unsubscribe', topics: ['items'] }])

export const UnsubscribedMessageSchema = message('UnsubscribedMessage', 'Server → client: the topics are no longer followed.', {
  type: Type.Literal('unsubscribed'),
  topics: TopicListSchema
}, [{ type: 'unsubscribed', topics: ['items'] }])

/** Every message a client may send, by its `type`. */
export const CLIENT_MESSAGES = {
  echo: EchoMessageSchema,
  ping: PingMessageSchema,
  subscribe: SubscribeMessageSchema,
  unsubscribe: UnsubscribeMessageSchema
} as const

export const ClientMessageSchema = Type.Union(Object.values(CLIENT_MESSAGES).map((schema) => Ref(schema)), {
  $id: 'ClientMessage',
  title: 'ClientMessage',
  description: 'Any message a client sends: a JSON object whose `type` says which.'
})

export const ServerMessageSchema = Type.Union([
  Ref(EchoMessageSchema), Ref(PongMessageSchema), Ref(SubscribedMessageSchema), Ref(UnsubscribedMessageSchema),
  Ref(EventMessageSchema), Ref(ErrorMessageSchema)
], {
  $id: 'ServerMessage',
  title: 'ServerMessage',
  description: 'Any message the server sends: a JSON object whose `type` says which.'
})

export type ClientMessageType = keyof typeof CLIENT_MESSAGES
export type ClientMessage = { [T in ClientMessageType]: Static<typeof CLIENT_MESSAGES[T]> }[ClientMessageType]
export type ServerMessage = Static<typeof ServerMessageSchema>

export const WsQuerySchema = StrictObject({
  access_token: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 4096,
    description: 'An access token, for clients that cannot send headers. Never logged.'
  }))
})

/** The route of the channel: hidden from OpenAPI, which cannot describe it; `/asyncapi.json` does. */
export const connectWebSocket = {
  hide: true,
  querystring: WsQuerySchema
} as const

export const wsComponents = [EchoMessageSchema, PingMessageSchema, PongMessageSchema, SubscribeMessageSchema, SubscribedMessageSchema,
  UnsubscribeMessageSchema, UnsubscribedMessageSchema, ClientMessageSchema, ServerMessageSchema]

import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { DateTime, defineResource, problems, Ref, StrictObject, StringEnum, signedInOrAnonymous } from './common.js'
import { ItemDeletedSchema, ItemSchema } from './items.js'
import { ImportErrorSchema, ImportResultSchema, JobSchema } from './jobs.js'

/** Topics anyone may follow, anonymous clients included. */
export const PUBLIC_TOPICS = ['items'] as const
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
/** One topic, unanchored: a public topic, or `user:<id>`. */
const TOPIC = `(?:${PUBLIC_TOPICS.join('|')}|user:${UUID})`

/** The private topic of a user: only a token of that user may follow it. */
export const userTopic = (userId: string) => `user:${userId}`
/** The user whose private topic this is; undefined for a public topic. */
export const topicOwner = (topic: string): string | undefined => topic.startsWith('user:') ? topic.slice('user:'.length) : undefined

export const TopicSchema = Type.String({
  pattern: `^${TOPIC}$`,
  maxLength: 41,
  description: '`items` (public: every change of every item) or `user:<your user id>` (private: the progress of your imports)',
  examples: ['items']
})

export const TopicListSchema = Type.Array(TopicSchema, { minItems: 1, maxItems: 20, uniqueItems: true, description: 'One to 20 distinct topics' })

const EventId = (description: string) => Type.String({ pattern: '^(?:0|[1-9][0-9]{0,15})$', maxLength: 16, description, examples: ['1042'] })

export const EventIdSchema = EventId('An event id: the decimal of a bigint that grows with every event, in the order events are delivered')

interface EventSpec {
  /** A public topic, or `user`: the private topic of the user the event concerns. */
  topic: typeof PUBLIC_TOPICS[number] | 'user'
  data: TSchema
  description: string
}

/**
 * Every event the API emits, with its topic and what it carries: the API's own schemas, so a subscriber gets the
 * same `Item` or `Job` a GET returns. A resource adds its events here; the realtime code handles any of them.
 */
export const EVENTS = {
  'item.created': { topic: 'items', data: ItemSchema, description: 'An item was created, through the API or by an import' },
  'item.updated': { topic: 'items', data: ItemSchema, description: 'An item changed: replaced, patched, or given a new image' },
  'item.deleted': { topic: 'items', data: ItemDeletedSchema, description: 'An item was deleted, by itself or with its owner' },
  'job.updated': { topic: 'user', data: JobSchema, description: 'An import of yours was queued, or changed status or progress' }
} as const satisfies Record<string, EventSpec>

export type EventName = keyof typeof EVENTS
export type EventData<N extends EventName> = Static<(typeof EVENTS)[N]['data']>
export const EVENT_NAMES = Object.keys(EVENTS) as EventName[]

/** `item.created` → `ItemCreatedEvent`. */
const eventMessageId = (name: string) =>
  name.split('.').map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join('') + 'Event'

function eventMessage (name: string, spec: EventSpec) {
  const id = eventMessageId(name)
  return StrictObject({
    type: Type.Literal('event'),
    id: EventIdSchema,
    topic: spec.topic === 'user'
      ? Type.String({ pattern: `^user:${UUID}$`, maxLength: 41, description: 'The private topic of the user the event concerns' })
      : Type.Literal(spec.topic),
    name: Type.Literal(name),
    data: Ref(spec.data),
    at: DateTime({ description: 'When the change was committed' })
  }, { $id: id, title: id, description: `\`${name}\`: ${spec.description}.` })
}

export const EventMessageSchemas = Object.entries(EVENTS).map(([name, spec]) => eventMessage(name, spec))

export const EventMessageSchema = Type.Union(EventMessageSchemas.map((schema) => Ref(schema)), {
  $id: 'EventMessage',
  title: 'EventMessage',
  description: 'Server → client: a stored event, on a topic the client follows. `name` tells what `data` is.'
})

export const ERROR_CODES = ['invalid_message', 'forbidden_topic', 'resync_required', 'rate_limited', 'unavailable', 'token_expired', 'login_ended'] as const
export type ErrorCode = typeof ERROR_CODES[number]

export const ErrorMessageSchema = StrictObject({
  type: Type.Literal('error'),
  code: StringEnum(ERROR_CODES, {
    description: '`invalid_message`: not JSON, or not a valid message (the connection stays open). ' +
      '`forbidden_topic`: someone else\'s private topic, or any private topic without a token. ' +
      '`resync_required`: `since` (or `Last-Event-ID`) is older than the events kept: reload what you show, then follow without it. ' +
      '`rate_limited`: too many messages; this one was dropped. `unavailable`: the database could not be read; retry. ' +
      '`token_expired`, `login_ended`: sent just before the server closes the connection (WebSocket code 1008); ' +
      'reconnect with a fresh token and `since`.'
  }),
  message: Type.String({ maxLength: 2000, description: 'What went wrong, for the developer', examples: ['/topics/0 must be a topic: items or user:<your user id>'] })
}, {
  $id: 'ErrorMessage',
  title: 'ErrorMessage',
  description: 'Server → client: a message could not be handled, or the connection is about to close.',
  examples: [{ type: 'error', code: 'invalid_message', message: 'The message is not valid JSON' }]
})

export const StreamMessageSchema = Type.Union([Ref(EventMessageSchema), Ref(ErrorMessageSchema)], {
  $id: 'StreamMessage',
  title: 'StreamMessage',
  description: 'The `data:` of one Server-Sent Event, as JSON: an event, or an error.'
})

export type ErrorMessage = Static<typeof ErrorMessageSchema>

export const StreamQuerySchema = StrictObject({
  topics: Type.String({
    pattern: `^${TOPIC}(?:,${TOPIC}){0,19}$`,
    maxLength: 1000,
    description: 'Comma list of one to 20 topics: `items`, and `user:<your user id>` for your own',
    examples: ['items']
  }),
  access_token: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 4096,
    description: 'An access token, for clients that cannot send headers (`EventSource`); `Authorization: Bearer` is the better way. Never logged.'
  })),
  lastEventId: Type.Optional(EventId('Start with the stored events after this one, as a reconnect with `Last-Event-ID` does ' +
    '(that header wins): for a new `EventSource` made after a token refresh, which cannot set the header'))
})

const StreamHeadersSchema = Type.Object({
  'Last-Event-ID': Type.Optional(EventId('Sent by a reconnecting `EventSource`: the stream starts with the stored events after this one'))
})

export const streamEvents = {
  operationId: 'streamEvents',
  tags: ['events'],
  summary: 'Follow events (Server-Sent Events)',
  description: 'The live event stream for clients that cannot keep a WebSocket (`EventSource`, curl, proxies); the same events as ' +
    'the WebSocket channel at `/api/v1/ws` (see `/asyncapi.json`). Each SSE event has `id:` set to the event id and `data:` ' +
    'a `StreamMessage` as JSON; a comment line every 15 s keeps the connection alive. A reconnecting `EventSource` sends ' +
    '`Last-Event-ID` and first gets every stored event after it, then live ones, with no gap and no duplicate; ' +
    'one older than the events kept (`EVENTS_RETENTION`) gets a `resync_required` error message, then live events. ' +
    'Anonymous clients may follow public topics; a private topic needs a token of its user (403 otherwise). ' +
    'The stream ends when the token expires or its login ends (after a `token_expired` or `login_ended` message).',
  security: signedInOrAnonymous,
  querystring: StreamQuerySchema,
  headers: StreamHeadersSchema,
  response: {
    200: {
      description: 'The event stream, until the client goes away, the token expires or the server shuts down',
      content: { 'text/event-stream': { schema: Ref(StreamMessageSchema) } }
    },
    ...problems(403)
  }
} as const

/** Every schema the events refer to, their data's included. */
export const eventsComponents = [ItemSchema, ItemDeletedSchema, ImportErrorSchema, ImportResultSchema, JobSchema,
  ...EventMessageSchemas, EventMessageSchema, ErrorMessageSchema, StreamMessageSchema]

export const eventsResource = defineResource({
  tag: { name: 'events', description: 'Live events as Server-Sent Events; the WebSocket channel at `/api/v1/ws` is described in [/asyncapi.json](/asyncapi.json)' },
  components: eventsComponents
})

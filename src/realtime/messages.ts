import fastJsonStringify from 'fast-json-stringify'
import { EventMessageSchemas, eventsComponents, topicOwner } from '../../schemas/events.js'
import { CLIENT_MESSAGES, type ClientMessage, type ClientMessageType } from '../../schemas/ws.js'
import { compileBodyValidator, onFirstUse, type AjvIssue } from '../lib/validation.js'
import { validationIssues } from '../lib/validation-issues.js'
import type { Identity } from './connections.js'
import type { StoredEvent } from './outbox.js'

/** What a raw client message turned out to be: a valid message, or why it is not one. */
export type Parsed = { message: ClientMessage } | { invalid: string }

/** Clearer words than a regular expression for the fields that have one. */
const PATTERN_MESSAGES: Array<[RegExp, string]> = [
  [/^\/topics\/\d+$/, 'must be a topic: items, or user:<your user id>'],
  [/^\/since$/, 'must be an event id: a whole number in decimal']
]

const MAX_LISTED = 10

function describe (issues: AjvIssue[]): string {
  const listed = validationIssues('body', issues).slice(0, MAX_LISTED).map((issue) => {
    const friendly = issues.some((raw) => raw.keyword === 'pattern' && raw.instancePath === issue.path)
      ? PATTERN_MESSAGES.find(([path]) => path.test(issue.path))?.[1]
      : undefined
    return `${issue.path === '' ? 'the message' : issue.path} ${friendly ?? issue.message}`
  })
  return [...new Set(listed)].join('; ')
}

const TYPES = Object.keys(CLIENT_MESSAGES) as ClientMessageType[]

/** Parses and validates client messages against their TypeBox schemas, compiled once. */
export function messageParser (): (data: Buffer, isBinary: boolean) => Parsed {
  const validators = new Map(TYPES.map((type) => [type, compileBodyValidator(CLIENT_MESSAGES[type])]))
  return (data, isBinary) => {
    if (isBinary) return { invalid: 'Messages are JSON text frames, not binary ones' }
    let value: unknown
    try {
      value = JSON.parse(data.toString('utf8'))
    } catch {
      return { invalid: 'The message is not valid JSON' }
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return { invalid: 'A message is a JSON object with a type' }
    const type = (value as { type?: unknown }).type
    const validate = typeof type === 'string' ? validators.get(type as ClientMessageType) : undefined
    if (validate === undefined) return { invalid: `/type must be one of ${TYPES.join(', ')}` }
    const issues = validate(value)
    // Validated against the schema of its own type just above.
    return issues.length === 0 ? { message: value as ClientMessage } : { invalid: describe(issues) }
  }
}

/** Whether `principal` may follow `topic`: public topics are open to anyone, `user:<id>` to that user only. */
export function mayFollow (principal: Identity | null, topic: string): boolean {
  const owner = topicOwner(topic)
  return owner === undefined || owner === principal?.id
}

/** Why some topics may not be followed, for a `forbidden_topic` error. */
export function forbiddenTopics (principal: Identity | null, topics: string[]): string | undefined {
  const refused = topics.filter((topic) => !mayFollow(principal, topic))
  if (refused.length === 0) return undefined
  return principal === null
    ? `Private topics need an access token: ${refused.join(', ')}`
    : `Only its own user may follow a private topic: ${refused.join(', ')}`
}

/** A token bucket: `capacity` at once, refilled at `perSecond`. */
export class TokenBucket {
  private tokens: number
  private last = Date.now()

  constructor (private readonly capacity: number, private readonly perSecond: number) {
    this.tokens = capacity
  }

  take (): boolean {
    const now = Date.now()
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) / 1000 * this.perSecond)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

/** Writes the `event` message of a stored event. */
export type SerializeEvent = (event: StoredEvent) => string

/**
 * Event messages serialized by the schema of their event, as responses are: the fields in the schema's order, and
 * nothing the schema does not declare. An event of a name this version does not know (written by a newer one
 * during a rolling deploy) is sent as it was stored.
 */
export function eventSerializer (): SerializeEvent {
  const external = Object.fromEntries(eventsComponents.map((schema) => [schema.$id ?? '', schema]))
  const serializers = new Map(EventMessageSchemas.map((schema) => [
    (schema.properties.name as { const?: string }).const ?? '',
    // TypeBox schemas are JSON Schema; fast-json-stringify types its input more narrowly.
    onFirstUse(() => fastJsonStringify(schema as Parameters<typeof fastJsonStringify>[0], { schema: external as Record<string, Parameters<typeof fastJsonStringify>[0]> }))
  ]))
  return (event) => {
    const message = { type: 'event', id: String(event.id), topic: event.topic, name: event.name, data: event.data, at: event.createdAt.toISOString() }
    return (serializers.get(event.name)?.() ?? JSON.stringify)(message)
  }
}

import { Type, type Static } from '@sinclair/typebox'
import { DateTime, defineResource, IdParamsSchema, Nullable, Page, PaginationQuery, problems, Ref, requires, StrictObject, StringEnum, Uuid } from './common.js'
import { EventIdSchema, TopicListSchema } from './events.js'
import { entityHeaders, noContent, pageResponse } from './http.js'

const Url = Type.String({
  format: 'uri',
  maxLength: 2000,
  pattern: '^https?://',
  description: 'Where events are POSTed: `http` or `https` (`https` only in production). A host that resolves to a loopback, ' +
    'private, link-local or metadata address is refused (checked again at every delivery).',
  examples: ['https://example.com/hooks/catalog']
})
const Description = Nullable(Type.String({ maxLength: 500, description: 'What the endpoint is for; null when none', examples: ['Sync to the storefront'] }))
const Topics = { ...TopicListSchema, description: 'The topics whose events are sent: `items`, or `user:<your user id>`' }
const Secret = Type.String({
  maxLength: 100,
  description: 'The signing secret (Standard Webhooks `whsec_…`): shown only here, keep it. Verify `webhook-signature` with it.',
  examples: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw']
})

export const WebhookSchema = StrictObject({
  id: Uuid({ examples: ['0196f1c2-7a8b-7cde-8f01-23456789abcd'] }),
  ownerId: Uuid({ description: 'The user the endpoint belongs to' }),
  url: Url,
  topics: Topics,
  description: Description,
  active: Type.Boolean({ description: 'Whether events are sent; an endpoint that keeps failing is deactivated, with `disabledReason`' }),
  disabledReason: Nullable(Type.String({ maxLength: 2000, description: 'Why the endpoint was deactivated after failing deliveries; null otherwise' })),
  version: Type.Integer({ minimum: 1, description: 'Incremented by every change; the `ETag` derives from it' }),
  createdAt: DateTime(),
  updatedAt: DateTime()
}, { $id: 'Webhook', title: 'Webhook', description: 'An endpoint that events are POSTed to, signed as the Standard Webhooks specification says.' })

export const WebhookWithSecretSchema = StrictObject({ ...WebhookSchema.properties, secret: Secret }, {
  $id: 'WebhookWithSecret',
  title: 'WebhookWithSecret',
  description: 'A webhook with its signing secret, as creating it or rotating its secret answers: the only time the secret is shown.'
})

export const WebhookCreateSchema = StrictObject({
  url: Url,
  topics: Topics,
  description: Type.Optional(Description)
}, { $id: 'WebhookCreate', title: 'WebhookCreate', examples: [{ url: 'https://example.com/hooks/catalog', topics: ['items'] }] })

export const WebhookUpdateSchema = StrictObject({
  url: Type.Optional(Url),
  topics: Type.Optional(Topics),
  description: Type.Optional(Description),
  active: Type.Optional(Type.Boolean({ description: 'Turn sending off or back on; turning it on clears `disabledReason`' }))
}, { $id: 'WebhookUpdate', title: 'WebhookUpdate', description: 'A JSON merge patch (RFC 7396): absent fields keep their value.', examples: [{ active: true }] })

export const DELIVERY_OUTCOMES = ['delivered', 'retrying', 'failed'] as const

export const WebhookDeliverySchema = StrictObject({
  id: Uuid(),
  webhookId: Uuid(),
  eventId: EventIdSchema,
  event: Type.String({ maxLength: 100, description: 'The event name', examples: ['item.created'] }),
  attempt: Type.Integer({ minimum: 1, description: 'Which attempt at delivering this event this was (a redelivery starts again at 1)' }),
  outcome: StringEnum(DELIVERY_OUTCOMES, { description: '`delivered` (2xx), `retrying` (another attempt is scheduled) or `failed` (no more attempts)' }),
  statusCode: Nullable(Type.Integer({ minimum: 100, maximum: 599, description: 'The endpoint\'s HTTP status; null when none came' })),
  durationMs: Type.Integer({ minimum: 0, description: 'How long the attempt took' }),
  error: Nullable(Type.String({ maxLength: 2000, description: 'Why the attempt failed when no status says it (timeout, connection, refused address)' })),
  createdAt: DateTime({ description: 'When the attempt was made' })
}, { $id: 'WebhookDelivery', title: 'WebhookDelivery', description: 'One attempt at delivering one event to one endpoint.' })

export const WebhookPageSchema = Page(WebhookSchema)
export const WebhookDeliveryPageSchema = Page(WebhookDeliverySchema)
export const DeliveryParamsSchema = StrictObject({ id: Uuid({ description: 'The webhook id' }), deliveryId: Uuid({ description: 'The delivery (attempt) id' }) })

export type Webhook = Static<typeof WebhookSchema>
export type WebhookCreate = Static<typeof WebhookCreateSchema>
export type WebhookUpdate = Static<typeof WebhookUpdateSchema>
export type WebhookDelivery = Static<typeof WebhookDeliverySchema>

export const webhooksResource = defineResource({
  tag: { name: 'webhooks', description: 'Outgoing webhooks: endpoints that receive the events of your topics, signed, retried, and their deliveries' },
  components: [WebhookSchema, WebhookWithSecretSchema, WebhookCreateSchema, WebhookUpdateSchema, WebhookDeliverySchema, WebhookPageSchema, WebhookDeliveryPageSchema],
  scopes: { webhooks: { description: 'Manage your webhook endpoints' } }
})

export const webhook = entityHeaders('webhook', '"0196f1c2-7a8b-7cde-8f01-23456789abcd.2"', { writable: true })
const owner = requires(['webhooks'], ['admin'])
const common = { tags: ['webhooks'], security: owner } as const
const ownRule = 'Only its owner (`webhooks`) or an admin may.'

export const createWebhook = {
  ...common,
  operationId: 'createWebhook',
  summary: 'Create a webhook',
  description: 'Registers an endpoint for the events of your topics. The answer carries its signing `secret`, shown this once. ' +
    'A URL on a loopback, private, link-local or metadata address is 400 (unless the server allows private targets).',
  security: requires(['webhooks']),
  body: Ref(WebhookCreateSchema),
  response: { 201: webhook.created('The new webhook, with its secret', WebhookWithSecretSchema), ...problems(403) }
} as const

export const listWebhooks = {
  ...common,
  operationId: 'listWebhooks',
  summary: 'List your webhooks',
  description: 'Your webhooks, newest first, a page at a time.',
  security: requires(['webhooks']),
  querystring: StrictObject(PaginationQuery),
  response: { 200: pageResponse('A page of webhooks', WebhookPageSchema), ...problems(403) }
} as const

export const getWebhook = {
  ...common,
  operationId: 'getWebhook',
  summary: 'Get a webhook',
  description: `One webhook, without its secret. ${ownRule}`,
  params: IdParamsSchema,
  headers: webhook.ifNoneMatch,
  response: { 200: webhook.ok('The webhook', WebhookSchema), 304: webhook.notModified(), ...problems(403, 404) }
} as const

export const updateWebhook = {
  ...common,
  operationId: 'updateWebhook',
  summary: 'Change a webhook',
  description: `Applies a JSON merge patch: \`url\`, \`topics\`, \`description\`, \`active\`. ${ownRule} With \`If-Match\`, only if that version is current (412).`,
  params: IdParamsSchema,
  headers: webhook.ifMatch,
  consumes: ['application/json', 'application/merge-patch+json'],
  body: Ref(WebhookUpdateSchema),
  response: { 200: webhook.ok('The changed webhook', WebhookSchema), ...problems(403, 404, 409, 412) }
} as const

export const deleteWebhook = {
  ...common,
  operationId: 'deleteWebhook',
  summary: 'Delete a webhook',
  description: `Deletes the endpoint and its deliveries; nothing more is sent to it. ${ownRule}`,
  params: IdParamsSchema,
  headers: webhook.ifMatch,
  response: { 204: noContent('Deleted'), ...problems(403, 404, 409, 412) }
} as const

export const rotateWebhookSecret = {
  ...common,
  operationId: 'rotateWebhookSecret',
  summary: 'Rotate a webhook\'s secret',
  description: `A new signing secret, shown this once; the old one stops signing at once. ${ownRule}`,
  params: IdParamsSchema,
  headers: webhook.ifMatch,
  response: { 200: webhook.ok('The webhook with its new secret', WebhookWithSecretSchema), ...problems(403, 404, 409, 412) }
} as const

export const listWebhookDeliveries = {
  ...common,
  operationId: 'listWebhookDeliveries',
  summary: 'List a webhook\'s deliveries',
  description: `Every attempt at delivering an event to this endpoint, newest first: outcome, status code, duration and error. ${ownRule}`,
  params: IdParamsSchema,
  querystring: StrictObject(PaginationQuery),
  response: { 200: pageResponse('A page of delivery attempts', WebhookDeliveryPageSchema), ...problems(403, 404) }
} as const

export const retryWebhookDelivery = {
  ...common,
  operationId: 'retryWebhookDelivery',
  summary: 'Deliver an event again',
  description: `Sends the event of this delivery to the endpoint again, as a new series of attempts. ${ownRule} 409 when the endpoint is inactive.`,
  params: DeliveryParamsSchema,
  response: { 202: { description: 'Accepted: the event is queued for delivery', type: 'null' }, ...problems(403, 404, 409) }
} as const

import { Type } from '@sinclair/typebox'
import { defineResource, problems, Ref, StrictObject } from './common.js'

const Link = (description: string, example: string) => Type.String({ maxLength: 200, description, examples: [example] })

export const LinkIndexSchema = StrictObject({
  name: Type.String({ maxLength: 100 }),
  version: Type.String({ maxLength: 50 }),
  links: StrictObject({
    docs: Link('Swagger UI', '/docs'),
    openapi: Link('OpenAPI document (JSON)', '/openapi.json'),
    openapiYaml: Link('OpenAPI document (YAML)', '/openapi.yaml'),
    asyncapi: Link('AsyncAPI document of the WebSocket channel', '/asyncapi.json'),
    dashboard: Link('Live dashboard on the WebSocket channel', '/dashboard'),
    health: Link('Readiness probe', '/health/ready'),
    metrics: Link('Prometheus metrics', '/metrics'),
    token: Link('OAuth2 token endpoint', '/api/v1/auth/token'),
    users: Link('Users collection', '/api/v1/users'),
    items: Link('Items collection', '/api/v1/items'),
    me: Link('The current user', '/api/v1/users/me'),
    websocket: Link('WebSocket channel of live events', '/api/v1/ws'),
    events: Link('Live events as Server-Sent Events', '/api/v1/events')
  })
}, { $id: 'LinkIndex', title: 'LinkIndex' })

export const HealthSchema = StrictObject({
  status: Type.Literal('ok')
}, { $id: 'Health', title: 'Health' })

export const getIndex = {
  operationId: 'getIndex',
  tags: ['service'],
  summary: 'Link index',
  description: 'Where to find the documentation, the OpenAPI document and the resources.',
  response: { 200: Ref(LinkIndexSchema, { description: 'Links to the documentation and the resources' }) }
} as const

export const getLiveness = {
  operationId: 'getLiveness',
  tags: ['service'],
  summary: 'Liveness probe',
  description: 'Answers 200 while the process runs.',
  response: { 200: Ref(HealthSchema, { description: 'The process is running' }) }
} as const

export const getReadiness = {
  operationId: 'getReadiness',
  tags: ['service'],
  summary: 'Readiness probe',
  description: 'Answers 200 when the database answers and every migration is applied; 503 otherwise, and while the server is shutting down.',
  response: { 200: Ref(HealthSchema, { description: 'Ready to serve' }), ...problems(503) }
} as const

export const serviceResource = defineResource({
  tag: { name: 'service', description: 'Health, metrics and the link index' },
  components: [LinkIndexSchema, HealthSchema]
})

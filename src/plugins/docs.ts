import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance, FastifySchema } from 'fastify'
import fp from 'fastify-plugin'
import { commonComponents, OAUTH2_SCHEME, problemResponse, SCOPES } from '../../schemas/common.js'
import { packageInfo } from '../paths.js'

const TOKEN_URL = '/api/v1/auth/token'

const TAGS = [
  { name: 'auth', description: 'OAuth2 password flow: tokens, refresh and revocation' },
  { name: 'users', description: 'Accounts: sign-up, your own profile, and user administration' },
  { name: 'items', description: 'The catalog: items, their images, search and imports' },
  { name: 'jobs', description: 'Background jobs such as item imports' },
  { name: 'events', description: 'Live events as Server-Sent Events; the WebSocket channel at `/api/v1/ws` is described in [/asyncapi.json](/asyncapi.json)' },
  { name: 'service', description: 'Health, metrics and the link index' }
]

type DocumentedSchema = FastifySchema & { hide?: boolean, security?: unknown[], response?: Record<string, unknown> }

/**
 * Fills in what every operation shares, so each route states only what is its own:
 * `security: []` when public, and the error responses any route can give (429 where rate limited).
 */
function addSharedResponses (schema: DocumentedSchema, method: string, rateLimited: boolean): void {
  schema.security ??= []
  const response = schema.response ?? {}
  const statuses = [401, 500, 503]
  if (rateLimited) statuses.push(429)
  if (schema.body !== undefined || schema.querystring !== undefined || schema.params !== undefined || schema.headers !== undefined) statuses.push(400)
  if (schema.body !== undefined && ['POST', 'PUT', 'PATCH'].includes(method)) statuses.push(413, 415)
  for (const status of statuses) response[status] ??= problemResponse(status)
  schema.response = response
}

/** OpenAPI document, Swagger UI at /docs, and the document itself at /openapi.json and /openapi.yaml. */
export default fp(async function docs (app: FastifyInstance) {
  for (const schema of commonComponents) app.addSchema(schema)

  app.addHook('onRoute', (route) => {
    const schema = route.schema as DocumentedSchema | undefined
    if (schema === undefined || schema.hide === true) return
    addSharedResponses(schema, Array.isArray(route.method) ? String(route.method[0]) : route.method, route.config?.rateLimit !== false)
  })

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'catalog-api',
        version: packageInfo.version,
        description: packageInfo.description + '.\n\nErrors are RFC 9457 `application/problem+json`. ' +
          'Log in with **Authorize** (OAuth2 password flow): your email as username, and your password.\n\n' +
          'Live events: the WebSocket channel at `/api/v1/ws` is described by the AsyncAPI document [/asyncapi.json](/asyncapi.json); ' +
          'the same events stream as Server-Sent Events from `GET /api/v1/events`; [/dashboard](/dashboard) shows them live.',
        license: { name: 'MIT', identifier: 'MIT' }
      },
      servers: [{ url: '/', description: 'This server' }],
      tags: TAGS,
      components: {
        securitySchemes: {
          [OAUTH2_SCHEME]: {
            type: 'oauth2',
            description: 'Bearer access tokens from the OAuth2 password grant',
            flows: { password: { tokenUrl: TOKEN_URL, refreshUrl: TOKEN_URL, scopes: { ...SCOPES } } }
          }
        }
      }
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, index) => typeof json.$id === 'string' ? json.$id : `def-${index}`
    }
  })

  // Swagger UI's own routes (its page and static assets) are not rate limited.
  await app.register(async (ui) => {
    ui.addHook('onRoute', (route) => { route.config = { ...route.config, rateLimit: false } })
    await ui.register(swaggerUi, {
      routePrefix: '/docs',
      uiConfig: { persistAuthorization: true, deepLinking: true, displayRequestDuration: true, tryItOutEnabled: true },
      transformSpecificationClone: true
    })
  })

  const hidden = { schema: { hide: true }, config: { rateLimit: false } }
  app.get('/openapi.json', hidden, async (_request, reply) => reply.type('application/json').send(app.swagger()))
  app.get('/openapi.yaml', hidden, async (_request, reply) => reply.type('application/yaml').send(app.swagger({ yaml: true })))
}, { name: 'docs', dependencies: ['errors'] })

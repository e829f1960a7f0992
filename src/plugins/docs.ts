import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance, FastifySchema } from 'fastify'
import fp from 'fastify-plugin'
import { API_PREFIX, BEARER_SCHEME, OAUTH2_SCHEME, problemResponse, type ResourceContract } from '../../schemas/common.js'
import { published } from '../lib/validation.js'
import { packageInfo } from '../paths.js'
import { asyncApiDocument } from '../realtime/asyncapi.js'

const TOKEN_URL = `${API_PREFIX}/auth/token`

type DocumentedResponse = Record<string, unknown> & { headers?: Record<string, unknown> }
type DocumentedSchema = FastifySchema & { hide?: boolean, security?: unknown[], response?: Record<string, DocumentedResponse> }

const text = (description: string) => ({ type: 'string', maxLength: 2000, description })
const count = (description: string) => ({ type: 'integer', minimum: 0, description })

/** Headers the server sends on any response, with the requests they concern. */
const SHARED_HEADERS = {
  every: { 'X-Request-Id': text('Identifies the request in the server log; a well-formed incoming `X-Request-Id` is kept') },
  rateLimited: {
    'RateLimit-Limit': count('Requests allowed in the tightest window that applies to this client'),
    'RateLimit-Remaining': count('Requests left in that window'),
    'RateLimit-Reset': count('Seconds until that window starts again')
  },
  challenge: { 'WWW-Authenticate': text('The Bearer challenge (RFC 6750): `error` says why, and `scope` what a 403 lacked') },
  retry: { 'Retry-After': { type: 'integer', minimum: 1, description: 'Seconds to wait before trying again' } },
  replayed: { 'Idempotent-Replayed': text('`true` on the stored answer to an earlier request with the same `Idempotency-Key`') }
}

interface RouteTraits { method: string, rateLimited: boolean, idempotent: boolean }

type HeaderDefinition = { description: string } & Record<string, unknown>
const SHARED_HEADER_DEFINITIONS: Record<string, HeaderDefinition> = Object.assign({}, ...Object.values(SHARED_HEADERS))

type Document = { components?: { headers?: Record<string, unknown> }, paths?: Record<string, Record<string, { responses?: Record<string, { headers?: Record<string, unknown> }> }>> }

type Schemas = Record<string, {
  oneOf?: Array<{ $ref?: string }>
  discriminator?: { propertyName: string, mapping?: Record<string, string> }
  properties?: Record<string, { const?: unknown, enum?: unknown[] }>
}>

/**
 * A discriminator's `mapping`, from each branch's constant: our validator refuses `mapping`, so the schemas leave it
 * out, but without it OpenAPI tools take the values for component names.
 */
function withDiscriminatorMappings<T> (document: T): T {
  const schemas = (document as { components?: { schemas?: Schemas } }).components?.schemas ?? {}
  for (const schema of Object.values(schemas)) {
    const { discriminator, oneOf = [] } = schema
    if (discriminator === undefined || discriminator.mapping !== undefined) continue
    discriminator.mapping = Object.fromEntries(oneOf.flatMap(({ $ref = '' }) => {
      // @fastify/swagger writes a `const` as a one-value `enum`.
      const tag = schemas[$ref.replace('#/components/schemas/', '')]?.properties?.[discriminator.propertyName]
      const value = tag?.const ?? (tag?.enum?.length === 1 ? tag.enum[0] : undefined)
      return typeof value === 'string' ? [[value, $ref]] : []
    }))
  }
  return document
}

/** The shared headers as `components.headers`, each response referring to them rather than repeating them. */
function withSharedHeaders<T> (document: T): T {
  const openapi = document as Document
  for (const operations of Object.values(openapi.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const response of Object.values(operation.responses ?? {})) {
        for (const name of Object.keys(response.headers ?? {})) {
          if (name in SHARED_HEADER_DEFINITIONS && response.headers !== undefined) response.headers[name] = { $ref: `#/components/headers/${name}` }
        }
      }
    }
  }
  openapi.components = {
    ...openapi.components,
    headers: Object.fromEntries(Object.entries(SHARED_HEADER_DEFINITIONS).map(([name, { description, ...schema }]) => [name, { description, schema }]))
  }
  return document
}

/** The headers a response of `status` may carry besides its own. */
function sharedHeaders (status: number, { rateLimited, idempotent }: RouteTraits): Record<string, unknown> {
  return {
    ...SHARED_HEADERS.every,
    ...(rateLimited ? SHARED_HEADERS.rateLimited : {}),
    ...(status === 401 || status === 403 ? SHARED_HEADERS.challenge : {}),
    // A 409 of an idempotent request still in progress says when to retry, as 429 and 503 do.
    ...(status === 429 || status === 503 || (idempotent && status === 409) ? SHARED_HEADERS.retry : {}),
    ...(idempotent && status >= 200 && status < 300 ? SHARED_HEADERS.replayed : {})
  }
}

/**
 * Fills in what every operation shares, so each route states only what is its own: `security: []` when public,
 * the error responses any route can give (429 where rate limited), and the headers any response may carry.
 */
function addSharedResponses (schema: DocumentedSchema, traits: RouteTraits): void {
  schema.security ??= []
  const response = schema.response ?? {}
  const statuses = [401, 500, 503]
  if (traits.rateLimited) statuses.push(429)
  if (schema.body !== undefined || schema.querystring !== undefined || schema.params !== undefined || schema.headers !== undefined) statuses.push(400)
  // Bodies are read on these methods whether the operation takes one or not: too big is 413, one it does not take 415.
  if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(traits.method)) statuses.push(413, 415)
  for (const status of statuses) response[status] ??= problemResponse(status)
  for (const [status, documented] of Object.entries(response)) {
    response[status] = { ...documented, headers: { ...sharedHeaders(Number(status), traits), ...documented.headers } }
  }
  schema.response = response
}

export interface DocsOptions {
  /** The registered resources' contracts, in the order their tags are listed. */
  contracts: ResourceContract[]
  /** Every scope there is, with its description. */
  scopes: Record<string, string>
}

/**
 * The OpenAPI document, Swagger UI at /docs, and the documents themselves: /openapi.json, /openapi.yaml, and the
 * live channel's /asyncapi.json.
 */
export default fp(async function docs (app: FastifyInstance, { contracts, scopes }: DocsOptions) {
  app.addHook('onRoute', (route) => {
    const schema = route.schema as DocumentedSchema | undefined
    if (schema === undefined || schema.hide === true) return
    addSharedResponses(schema, {
      method: Array.isArray(route.method) ? String(route.method[0]) : route.method,
      rateLimited: route.config?.rateLimit !== false,
      idempotent: route.config?.idempotency !== undefined && route.config.idempotency !== false
    })
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
        license: { name: 'MIT', identifier: 'MIT' },
        contact: packageInfo.author
      },
      servers: [{ url: '/', description: 'This server' }],
      tags: contracts.map((contract) => contract.tag),
      components: {
        securitySchemes: {
          [OAUTH2_SCHEME]: {
            type: 'oauth2',
            description: 'Bearer access tokens from the OAuth2 password grant',
            flows: { password: { tokenUrl: TOKEN_URL, refreshUrl: TOKEN_URL, scopes } }
          },
          [BEARER_SCHEME]: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: `An access token from ${TOKEN_URL}, pasted (for tools that cannot run the password flow); its scopes are the same`
          }
        }
      }
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, index) => typeof json.$id === 'string' ? json.$id : `def-${index}`
    },
    transformObject: (document) =>
      published(withDiscriminatorMappings(withSharedHeaders('openapiObject' in document ? document.openapiObject : document.swaggerObject)))
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
  const asyncapi = JSON.stringify(asyncApiDocument())
  app.get('/asyncapi.json', hidden, async (_request, reply) => reply.type('application/json').send(asyncapi))
}, { name: 'docs', dependencies: ['errors'] })

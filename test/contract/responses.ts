import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { FastifyInstance } from 'fastify'

/**
 * Headers of HTTP itself, of CORS and of the security middleware: the API does not document them per operation.
 * Any other header a response carries must be declared for its route and status.
 */
const TRANSPORT_HEADERS = new Set([
  'content-type', 'content-length', 'date', 'connection', 'keep-alive', 'transfer-encoding', 'vary',
  'content-security-policy', 'cross-origin-opener-policy', 'cross-origin-resource-policy', 'cross-origin-embedder-policy',
  'origin-agent-cluster', 'referrer-policy', 'strict-transport-security', 'x-content-type-options', 'x-dns-prefetch-control',
  'x-download-options', 'x-frame-options', 'x-permitted-cross-domain-policies', 'x-xss-protection'
])

interface HeaderObject { schema?: Record<string, unknown>, $ref?: string }
interface ResponseObject { headers?: Record<string, HeaderObject>, content?: Record<string, { schema?: unknown }> }
interface Document {
  paths: Record<string, Record<string, { operationId?: string, responses?: Record<string, ResponseObject> }>>
  components?: { headers?: Record<string, HeaderObject> }
}

/** A JSON pointer segment. */
const segment = (text: string) => text.replaceAll('~', '~0').replaceAll('/', '~1')

/** `/api/v1/items/:id` → `/api/v1/items/{id}`. */
const openapiPath = (route: string) => route.replace(/:([A-Za-z0-9_]+)/g, '{$1}')

const mediaType = (contentType: unknown) => String(contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? ''

/** Checks responses against the document: their status, media type, body and headers. */
class ResponseContract {
  private readonly ajv = new Ajv2020({ allErrors: true, strict: false })
  private readonly validators = new Map<string, ValidateFunction>()

  constructor (private readonly document: Document) {
    addFormats.default(this.ajv)
    this.ajv.addSchema(document as object, 'openapi')
  }

  private validator (pointer: string): ValidateFunction {
    let validate = this.validators.get(pointer)
    if (validate === undefined) this.validators.set(pointer, validate = this.ajv.compile({ $ref: `openapi#${pointer}` }))
    return validate
  }

  private describe (validate: ValidateFunction): string {
    return (validate.errors ?? []).slice(0, 5).map((error) => `${error.instancePath || '(root)'} ${error.message ?? ''}`).join(', ')
  }

  /** What is wrong with a response; empty when it is what the document says. A `body` of null was streamed, not read. */
  check (method: string, route: string, status: number, headers: Record<string, unknown>, body: string | null): string[] {
    const path = openapiPath(route)
    const verb = method === 'HEAD' ? 'get' : method.toLowerCase()
    const operation = this.document.paths[path]?.[verb]
    // Routes hidden from the document (its own, Swagger UI, the dashboard), and routes a test adds for itself without
    // an operationId (every operation of the API has one), are not part of the contract.
    if (operation?.operationId === undefined) return []
    const statusKey = [String(status), `${String(status)[0] ?? ''}XX`, 'default'].find((key) => operation.responses?.[key] !== undefined)
    if (statusKey === undefined) return [`status ${status} is not documented`]
    const documented = operation.responses?.[statusKey] ?? {}
    const base = `/paths/${segment(path)}/${verb}/responses/${statusKey}`
    const problems: string[] = []

    const declared = new Map(Object.entries(documented.headers ?? {}).map(([name, header]) => [name.toLowerCase(), { name, header }]))
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined || TRANSPORT_HEADERS.has(name) || name.startsWith('access-control-')) continue
      const entry = declared.get(name)
      if (entry === undefined) {
        problems.push(`header ${name} is not declared`)
        continue
      }
      const header = entry.header.$ref === undefined
        ? entry.header
        : this.document.components?.headers?.[entry.header.$ref.replace('#/components/headers/', '')] ?? {}
      const schema = header.schema ?? {}
      const typed = schema.type === 'integer' || schema.type === 'number' ? Number(value) : String(value)
      const pointer = entry.header.$ref === undefined
        ? `${base}/headers/${segment(entry.name)}/schema`
        : `${entry.header.$ref.slice(1)}/schema`
      const validate = this.validator(pointer)
      if (!validate(typed)) problems.push(`header ${name}: ${this.describe(validate)}`)
    }

    const type = mediaType(headers['content-type'])
    const hasBody = body !== ''
    if (documented.content === undefined) {
      if (hasBody) problems.push(`${status} documents no body, but one was sent (${type})`)
      return problems
    }
    if (!hasBody) return method === 'HEAD' ? problems : [...problems, `${status} documents a body, but none was sent`]
    if (documented.content[type] === undefined) return [...problems, `media type ${type} is not documented for ${status}`]
    if (body === null || !type.endsWith('json')) return problems
    const validate = this.validator(`${base}/content/${segment(type)}/schema`)
    let parsed: unknown
    try {
      parsed = JSON.parse(body)
    } catch {
      return [...problems, `the ${type} body is not JSON`]
    }
    if (!validate(parsed)) problems.push(`body: ${this.describe(validate)}`)
    return problems
  }
}

/** One contract per document: the apps of a test process usually serve the same one. */
const contracts = new Map<string, ResponseContract>()

/**
 * Makes every response of `app` prove itself against the schema its route documents for its status and media type,
 * headers included, with a standard validator at its defaults (Ajv 2020; strict schema mode off, since OpenAPI's
 * own keywords are not JSON Schema's). A response that does not is replaced by a 500 naming what is wrong, so the
 * test that caused it fails. Tests only: the server does not pay for this.
 */
export function proveResponses (app: FastifyInstance): void {
  let contract: ResponseContract | undefined
  app.addHook('onSend', async (request, reply, payload) => {
    const route = request.routeOptions.url
    if (route === undefined) return payload
    if (contract === undefined) {
      const document = app.swagger() as unknown as Document
      const key = JSON.stringify(document)
      contract = contracts.get(key) ?? new ResponseContract(document)
      contracts.set(key, contract)
    }
    // A streamed body is not read here (null); its status, media type and headers still are checked.
    const body = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : payload === null || payload === undefined ? '' : null
    const headers = Object.fromEntries(Object.entries(reply.getHeaders()).map(([name, value]) => [name.toLowerCase(), value]))
    const problems = contract.check(request.method, route, reply.statusCode, headers, body)
    if (problems.length === 0) return payload
    const detail = `${request.method} ${route} → ${reply.statusCode} is off its documented contract: ${problems.join('; ')}`
    request.log.error(detail)
    process.stderr.write(`${detail}\n`)
    reply.code(500).type('application/problem+json')
    return JSON.stringify({ type: 'urn:catalog-api:test:off-contract', title: 'Internal Server Error', status: 500, detail, instance: request.url })
  })
}

import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { InjectOptions } from 'fastify'
import t, { type Test } from 'tap'
import { authHeader, build, login, signUp, TEST_PASSWORD, type TokenPair } from '../helper.js'
import { multipart } from '../jobs/helpers.js'

// Walks the served OpenAPI document and, for every operation, sends a valid request built from its schemas and
// examples, then invalid ones. Whatever comes back must be documented for the operation (the response contract of
// test/helper.ts turns anything else into a 500), never a 5xx, and every error a problem (RFC 6749 errors on the token
// endpoints). The mutations are drawn from a seeded generator: CONTRACT_SEED=<n> replays a run.
const SEED = Number(process.env.CONTRACT_SEED ?? 20261201)
console.log(`# contract fuzz seed ${SEED} (CONTRACT_SEED=${SEED} replays it)`)

/** mulberry32: a small seeded generator, so a failing run can be replayed exactly. */
function generator (seed: number) {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296
  }
  return {
    pick: <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)] as T,
    int: (below: number) => Math.floor(next() * below)
  }
}
const random = generator(SEED)

type Schema = Record<string, unknown> & {
  $ref?: string
  type?: string | string[]
  properties?: Record<string, Schema>
  required?: string[]
  items?: Schema
  oneOf?: Schema[]
  examples?: unknown[]
  default?: unknown
  maxLength?: number
  maximum?: number
}
interface Parameter { name: string, in: 'query' | 'path' | 'header', required?: boolean, schema: Schema, example?: unknown }
interface Operation {
  operationId: string
  parameters?: Parameter[]
  requestBody?: { content: Record<string, { schema: Schema }> }
  responses: Record<string, { content?: Record<string, unknown> }>
  security?: Array<Record<string, string[]>>
}
interface Document { paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, Schema> } }

const ROOT = { FIRST_SUPERUSER_EMAIL: 'root@example.com', FIRST_SUPERUSER_PASSWORD: 'root-password-123' }
const app = await build(t, { ...ROOT, AUTH_RATE_LIMIT_PER_MINUTE: '100000' })
const document = app.swagger() as unknown as Document
const root = await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD, 'profile items:write admin')
const png = await readFile(new URL('../fixtures/pixel.png', import.meta.url))

const resolve = (schema: Schema | undefined): Schema => {
  if (schema?.$ref === undefined) return schema ?? {}
  return resolve(document.components.schemas[schema.$ref.replace('#/components/schemas/', '')])
}
const typeOf = (schema: Schema) => [schema.type].flat().find((type) => type !== 'null')

/** A value the schema accepts: its example, its default, or one made from its type. */
function valid (schema: Schema): unknown {
  const resolved = resolve(schema)
  if (resolved.examples !== undefined && resolved.examples.length > 0) return resolved.examples[0]
  if (resolved.default !== undefined) return resolved.default
  if (resolved.oneOf !== undefined) return valid(resolved.oneOf[0] ?? {})
  switch (typeOf(resolved)) {
    case 'object': return Object.fromEntries((resolved.required ?? []).map((name) => [name, valid(resolved.properties?.[name] ?? {})]))
    case 'array': return []
    case 'integer': case 'number': return 1
    case 'boolean': return true
    default: return resolved.format === 'uuid' ? randomUUID() : 'x'
  }
}

/**
 * Query-string values the schema refuses: text is all a query string has, so "another type" means text that does
 * not read as the type (plus the numbers that parse to nothing finite).
 */
function invalidText (schema: Schema): string[] {
  const resolved = resolve(schema)
  const type = typeOf(resolved)
  if (type === 'integer' || type === 'number') {
    return [random.pick(['abc', '12abc', '']), String((resolved.maximum ?? 1e12) + 1 + random.int(1000)), String(-1 - random.int(1000)),
      random.pick(['Infinity', '1e400', 'NaN']), ...(type === 'integer' ? ['1.5'] : [])]
  }
  if (type === 'boolean') return [random.pick(['maybe', 'yes', '2'])]
  return ['x'.repeat((resolved.maxLength ?? 10_000) + 1 + random.int(100)), `a\u0000${'b'.repeat(random.int(5))}`,
    ...(typeof resolved.pattern === 'string' || typeof resolved.format === 'string' ? ['!!not valid!!'] : [])]
}

/** Values the schema refuses, drawn by the generator: another type, too long, NUL, out of range, a bad pattern. */
function invalid (schema: Schema): unknown[] {
  const resolved = resolve(schema)
  const type = typeOf(resolved)
  const kind = (value: unknown) => Array.isArray(value) ? 'array' : typeof value === 'number' ? 'number' : typeof value
  const wrongTypes = [123, 'text', true, { a: 1 }, [1, 2]].filter((value) => kind(value) !== (type === 'integer' ? 'number' : type))
  const values: unknown[] = [random.pick(wrongTypes)]
  if (type === 'string') {
    values.push('x'.repeat((resolved.maxLength ?? 10_000) + 1 + random.int(100)), `a\u0000${'b'.repeat(random.int(5))}`)
    if (typeof resolved.pattern === 'string' || typeof resolved.format === 'string') values.push('!!not valid!!')
  }
  if (type === 'integer' || type === 'number') values.push((resolved.maximum ?? 1e12) + 1 + random.int(1000), -1 - random.int(1000))
  if (type === 'integer') values.push(1.5)
  return values
}

/**
 * A principal of its own per operation (an operation may delete or lock out who calls it), with every scope but
 * `webhooks`: an endpoint made from the documented example would be a real host off this machine, which events would
 * then be sent to. Webhook routes are still called (403 to create, 404 for another resource's id).
 */
async function principal (): Promise<{ id: string, token: TokenPair }> {
  const user = await signUp(app)
  const promoted = await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: authHeader(root), payload: { isSuperuser: true } })
  if (promoted.statusCode !== 200) throw new Error(`promote: ${promoted.statusCode}`)
  return { id: user.id, token: await login(app, user.email, TEST_PASSWORD, 'profile items:write admin') }
}

/** The id a path's `{id}` needs for the valid request: an item, a user or a job of the caller's. */
async function pathId (path: string, caller: { id: string, token: TokenPair }): Promise<string> {
  if (path.startsWith('/api/v1/users')) return caller.id
  if (path.startsWith('/api/v1/jobs')) {
    const body = multipart([{ name: 'file', filename: 'one.csv', type: 'text/csv', content: 'name,description,price,tags\nA,,1,\n' }])
    return (await app.inject({ method: 'POST', url: '/api/v1/items/import', headers: { ...authHeader(caller.token), ...body.headers }, payload: body.payload })).json<{ id: string }>().id
  }
  return (await app.inject({ method: 'POST', url: '/api/v1/items', headers: authHeader(caller.token), payload: { name: 'Fuzzed', price: 1 } })).json<{ id: string }>().id
}

interface Request { method: string, url: string, headers: Record<string, string>, payload?: string | Buffer }

/** The body of a valid request in the media type the operation takes first. */
function validBody (operation: Operation): { headers: Record<string, string>, payload: string | Buffer } | undefined {
  const content = operation.requestBody?.content
  if (content === undefined) return undefined
  if (content['multipart/form-data'] !== undefined) {
    const isImport = operation.operationId === 'importItems'
    const body = multipart([isImport
      ? { name: 'file', filename: 'items.csv', type: 'text/csv', content: 'name,description,price,tags\nA,,1,\n' }
      : { name: 'file', filename: 'pixel.png', type: 'image/png', content: png }])
    return body
  }
  const [type, media] = Object.entries(content).find(([name]) => name.endsWith('json')) ?? ['application/json', { schema: {} }]
  return { headers: { 'content-type': type }, payload: JSON.stringify(valid(media.schema)) }
}

const isOAuthEndpoint = (operation: Operation) => operation.operationId === 'createToken' || operation.operationId === 'revokeToken'

/** Sends a request and checks what every answer must be. A stream that starts is cut at once: it would never end. */
async function send (t: Test, operation: Operation, label: string, request: Request): Promise<number> {
  const res = await app.inject({ ...request, method: request.method as InjectOptions['method'], payloadAsStream: true })
  let body = ''
  if (res.headers['content-type']?.toString().startsWith('text/event-stream') === true) res.stream().destroy()
  else for await (const chunk of res.stream()) body += String(chunk)
  const where = `${operation.operationId} ${label} (seed ${SEED})`
  t.ok(res.statusCode < 500, `${where}: ${res.statusCode} is not a 5xx${res.statusCode >= 500 ? ` — ${body.slice(0, 500)}` : ''}`)
  t.ok(operation.responses[String(res.statusCode)] !== undefined, `${where}: ${res.statusCode} is documented`)
  if (res.statusCode >= 400) {
    const expected = isOAuthEndpoint(operation) && res.statusCode === 400 ? /^application\/json/ : /^application\/problem\+json/
    t.match(res.headers['content-type'], expected, `${where}: the error is ${String(expected)}`)
  }
  return res.statusCode
}

const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, operation]) => ({ path, method: method.toUpperCase(), operation })))

for (const { path, method, operation } of operations) {
  t.test(`${method} ${path} (${operation.operationId}): valid and invalid requests get documented answers, never a 5xx`, async (t) => {
    const caller = await principal()
    const secured = (operation.security ?? []).some((alternative) => Object.keys(alternative).length > 0)
    const auth = secured ? authHeader(caller.token) : {}
    const id = path.includes('{id}') ? await pathId(path, caller) : undefined
    const url = (pathValue = id, query: Record<string, unknown> = {}) => {
      const search = new URLSearchParams()
      for (const [name, value] of Object.entries(query)) {
        for (const item of [value].flat()) search.append(name, typeof item === 'object' ? JSON.stringify(item) : String(item))
      }
      const text = search.toString()
      return path.replace('{id}', encodeURIComponent(String(pathValue))) + (text === '' ? '' : `?${text}`)
    }
    const queryParams = (operation.parameters ?? []).filter((parameter) => parameter.in === 'query')
    const validQuery = Object.fromEntries(queryParams.filter((parameter) => parameter.required === true)
      .map((parameter) => [parameter.name, parameter.example ?? valid(parameter.schema)]))
    const body = validBody(operation)
    const request = (overrides: Partial<Request> = {}): Request => ({
      method,
      url: url(id, validQuery),
      headers: { ...auth, ...body?.headers },
      ...(body === undefined ? {} : { payload: body.payload }),
      ...overrides
    })

    await send(t, operation, 'valid', request())

    if (secured) {
      await send(t, operation, 'without a token', request({ headers: { ...body?.headers } }))
      await send(t, operation, 'with a bad token', request({ headers: { ...body?.headers, ...authHeader('not.a.token') } }))
    }
    if (id !== undefined) {
      for (const bad of ['not-a-uuid', randomUUID(), 'x'.repeat(300), '..', '\u0000']) await send(t, operation, `path id ${JSON.stringify(bad.slice(0, 20))}`, request({ url: url(bad, validQuery) }))
    }
    for (const parameter of queryParams) {
      for (const value of invalidText(parameter.schema)) {
        const label = `query ${parameter.name}=${JSON.stringify(value).slice(0, 40)}`
        await send(t, operation, label, request({ url: url(id, { ...validQuery, [parameter.name]: value }) }))
      }
    }
    await send(t, operation, 'an unknown query parameter', request({ url: url(id, { ...validQuery, surprise: 'yes' }) }))

    const schema = Object.entries(operation.requestBody?.content ?? {}).find(([type]) => type.endsWith('json'))?.[1].schema
    const example = schema === undefined ? undefined : valid(schema)
    if (schema !== undefined && typeof example === 'object' && example !== null) {
      const object = example as Record<string, unknown>
      const resolved = resolve(schema)
      const properties = resolved.properties ?? resolve(resolved.oneOf?.[0]).properties ?? {}
      const json = (value: unknown, type = 'application/json') => request({ headers: { ...auth, 'content-type': type }, payload: JSON.stringify(value) })
      for (const [name, property] of Object.entries(properties)) {
        for (const value of invalid(property)) await send(t, operation, `body ${name}=${JSON.stringify(value).slice(0, 40)}`, json({ ...object, [name]: value }))
      }
      for (const name of resolve(schema).required ?? Object.keys(object)) {
        const { [name]: _left, ...without } = object
        await send(t, operation, `body without ${name}`, json(without))
      }
      await send(t, operation, 'body with an unknown field', json({ ...object, [`unknown${random.int(1000)}`]: 1 }))
      await send(t, operation, 'a body of another type', json(random.pick([[], 'text', 42, null])))
      await send(t, operation, 'malformed JSON', request({ headers: { ...auth, 'content-type': 'application/json' }, payload: '{"name":' }))
      await send(t, operation, 'a body over 1 MiB', json({ ...object, padding: 'x'.repeat(1_100_000) }))
    }
    if (body !== undefined) {
      await send(t, operation, 'a media type it does not take', request({ headers: { ...auth, 'content-type': random.pick(['text/plain', 'application/xml', 'text/csv']) } }))
    } else {
      await send(t, operation, 'a body it does not take', request({ headers: { ...auth, 'content-type': 'application/json' }, payload: '{"a":1}' }))
    }
  })
}

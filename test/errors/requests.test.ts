import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { StrictObject } from '../../schemas/common.js'
import { build } from '../helper.js'

const EchoBody = StrictObject({
  name: Type.String({ minLength: 1, maxLength: 50 }),
  n: Type.Integer({ minimum: 0, maximum: 100 }),
  tags: Type.Optional(Type.Array(Type.String({ maxLength: 40 }), { maxItems: 5 })),
  note: Type.Optional(Type.String({ maxLength: 2_000_000 }))
})
const EchoQuery = StrictObject({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  tag: Type.Optional(Type.Array(Type.String({ maxLength: 40 }), { maxItems: 5 })),
  q: Type.Optional(Type.String({ maxLength: 100 }))
})
const EchoParams = StrictObject({ key: Type.String({ maxLength: 100 }) })

/** Routes of the test's own, to drive validation and parsing. */
function echoRoutes (app: FastifyInstance) {
  app.post('/test/echo', { schema: { body: EchoBody } }, async (request) => request.body)
  app.post('/test/no-body', async () => ({ ok: true }))
  app.get('/test/query', { schema: { querystring: EchoQuery } }, async (request) => request.query)
  app.get('/test/things/:key', { schema: { params: EchoParams } }, async (request) => request.params)
}

type Injected = Awaited<ReturnType<FastifyInstance['inject']>>

/** Asserts a problem+json response of that status and returns its body. */
function problemOf (t: Test, res: Injected, status: number): Record<string, unknown> {
  t.equal(res.statusCode, status, `status ${status}`)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.ok(res.headers['x-request-id'])
  const body = res.json<Record<string, unknown>>()
  t.equal(body.status, status)
  t.type(body.type, 'string')
  t.type(body.title, 'string')
  t.type(body.detail, 'string')
  t.type(body.instance, 'string')
  return body
}

t.test('errors', async (t) => {
  const app = await build(t, {}, {}, echoRoutes)
  const post = (payload: string | Buffer, contentType = 'application/json') =>
    app.inject({ method: 'POST', url: '/test/echo', payload, headers: { 'content-type': contentType } })

  t.test('GET unknown route → 404 problem with its path as instance', async (t) => {
    const res = await app.inject({ url: '/nope/here?x=1' })
    const body = problemOf(t, res, 404)
    t.equal(body.instance, '/nope/here')
  })

  t.test('DELETE on a GET route → 405 with Allow', async (t) => {
    const res = await app.inject({ method: 'DELETE', url: '/health/live' })
    problemOf(t, res, 405)
    t.match(res.headers.allow, /GET/)
    t.match(res.headers.allow, /HEAD/)
    t.notMatch(res.headers.allow, /DELETE/)
  })

  t.test('PUT on a POST route with params → 405 listing POST', async (t) => {
    const res = await app.inject({ method: 'PUT', url: '/test/echo' })
    problemOf(t, res, 405)
    t.equal(res.headers.allow, 'POST')
  })

  t.test('malformed URL /%E0%A4%A → 400 problem', async (t) => {
    const res = await app.inject({ url: '/%E0%A4%A' })
    problemOf(t, res, 400)
  })

  t.test('POST /test/echo with malformed JSON → 400 problem', async (t) => {
    problemOf(t, await post('{"name": "x",'), 400)
  })

  t.test('POST /test/echo with an empty body and a JSON content type → 400 problem', async (t) => {
    problemOf(t, await post(''), 400)
  })

  t.test('POST /test/echo with text/plain, application/xml or no content type → 415 problem', async (t) => {
    problemOf(t, await post('{"name":"x","n":1}', 'text/plain'), 415)
    problemOf(t, await post('<a/>', 'application/xml'), 415)
    const res = await app.inject({ method: 'POST', url: '/test/echo', payload: 'x=1', headers: { 'content-type': '' } })
    t.ok(res.statusCode === 415 || res.statusCode === 400, `no content type → ${res.statusCode}`)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
  })

  t.test('a body sent to an operation that documents none → 415 problem', async (t) => {
    const res = await app.inject({ method: 'DELETE', url: '/api/v1/items/01a203f2-922f-743e-933c-b0f0ae6d895f', payload: { x: 1 } })
    t.equal(res.statusCode, 401, 'authentication comes first')
    const health = await app.inject({ method: 'OPTIONS', url: '/', payload: { x: 1 } })
    t.not(health.statusCode, 500)
    problemOf(t, await app.inject({ method: 'POST', url: '/test/no-body', payload: { x: 1 } }), 415)
    t.equal((await app.inject({ method: 'POST', url: '/test/no-body' })).statusCode, 200, 'without a body it is served')
  })

  t.test('POST /test/echo with a JSON body over 1 MiB → 413 problem', async (t) => {
    problemOf(t, await post(JSON.stringify({ name: 'x', n: 1, note: 'a'.repeat(1_100_000) })), 413)
  })

  t.test('POST /test/echo with 100k levels of nesting → 400, not 5xx', async (t) => {
    problemOf(t, await post('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000)), 400)
    problemOf(t, await post('['.repeat(100_000) + ']'.repeat(100_000)), 400)
    const nested = `{"name":"x","n":1,"tags":${'['.repeat(100_000)}${']'.repeat(100_000)}}`
    problemOf(t, await post(nested), 400)
  })

  t.test('POST /test/echo with __proto__ or constructor.prototype → 400 problem', async (t) => {
    problemOf(t, await post('{"name":"x","n":1,"__proto__":{"isAdmin":true}}'), 400)
    problemOf(t, await post('{"name":"x","n":1,"constructor":{"prototype":{"isAdmin":true}}}'), 400)
  })

  t.test('POST /test/echo with invalid UTF-8 bytes → 400 problem', async (t) => {
    const body = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('","n":1}')])
    const problem = problemOf(t, await post(body), 400)
    t.match(problem.detail, /UTF-8/)
  })

  t.test('POST /test/echo with valid multi-byte UTF-8 → 200', async (t) => {
    const res = await post(JSON.stringify({ name: 'café ✓ 𝄞', n: 1 }))
    t.equal(res.statusCode, 200)
    t.equal(res.json().name, 'café ✓ 𝄞')
  })

  t.test('NUL in a body string → 400 listing body paths', async (t) => {
    const body = problemOf(t, await post(JSON.stringify({ name: 'a\u0000b', n: 1, tags: ['ok', '\u0000'] })), 400)
    t.same(body.errors, [
      { in: 'body', path: '/name', message: 'must not contain NUL characters' },
      { in: 'body', path: '/tags/1', message: 'must not contain NUL characters' }
    ])
  })

  t.test('NUL in a query value → 400 listing the query path', async (t) => {
    const body = problemOf(t, await app.inject({ url: '/test/query?q=a%00b' }), 400)
    t.same(body.errors, [{ in: 'query', path: '/q', message: 'must not contain NUL characters' }])
  })

  t.test('NUL in a path parameter → 400 listing the path parameter', async (t) => {
    const body = problemOf(t, await app.inject({ url: '/test/things/a%00b' }), 400)
    t.same(body.errors, [{ in: 'path', path: '/key', message: 'must not contain NUL characters' }])
  })

  t.test('POST /test/echo → 400 listing every failing body field', async (t) => {
    const body = problemOf(t, await post(JSON.stringify({ n: 'five', extra: 1, other: true, tags: 'x' })), 400)
    t.equal(body.type, 'urn:catalog-api:problem:validation-error')
    const errors = body.errors as Array<{ in: string, path: string, message: string }>
    t.ok(errors.every((error) => error.in === 'body'))
    const paths = errors.map((error) => error.path).sort()
    t.same(paths, ['/extra', '/n', '/name', '/other', '/tags'])
    t.same(errors.find((error) => error.path === '/name')?.message, 'is required')
    t.same(errors.find((error) => error.path === '/extra')?.message, 'is not a known field')
  })

  t.test('POST /api/v1/users with 1 MiB of unknown keys and no token → a small 400: the bound is reported, not every key', async (t) => {
    let payload = '{'
    for (let i = 0; payload.length < 1_000_000; i++) payload += `"key${i}":1,`
    payload = `${payload.slice(0, -1)}}`
    const res = await app.inject({ method: 'POST', url: '/api/v1/users', payload, headers: { 'content-type': 'application/json' } })
    const body = problemOf(t, res, 400)
    t.ok(res.body.length < 2_000, `the problem is ${res.body.length} bytes`)
    t.same(body.errors, [{ in: 'body', path: '', message: 'must have at most 3 fields' }])
    t.equal(body.errorCount, 1)
  })

  t.test('POST /api/v1/users with a few unknown keys → 400 naming each of them', async (t) => {
    const payload = JSON.stringify({ email: 'a@example.com', password: 'long enough', fullName: 'A', role: 'admin', isSuperuser: true })
    const body = problemOf(t, await app.inject({ method: 'POST', url: '/api/v1/users', payload, headers: { 'content-type': 'application/json' } }), 400)
    t.same(body.errors, [
      { in: 'body', path: '/role', message: 'is not a known field' },
      { in: 'body', path: '/isSuperuser', message: 'is not a known field' }
    ])
    t.equal(body.errorCount, 2)
  })

  t.test('a problem lists the first 100 failing fields and counts them all', async (t) => {
    const payload = JSON.stringify(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, '\u0000'])))
    const res = await post(payload)
    const body = problemOf(t, res, 400)
    const errors = body.errors as Array<{ path: string }>
    t.equal(errors.length, 100)
    t.same(errors.slice(0, 2).map((error) => error.path), ['/k0', '/k1'])
    t.equal(body.errorCount, 5000)
    t.ok(res.body.length < 10_000, `the problem is ${res.body.length} bytes`)
  })

  t.test('a problem cuts long texts to the bounds of its schema: a key of 100 KB, a path of 15 KB', async (t) => {
    const key = 'k'.repeat(100_000)
    const body = problemOf(t, await post(JSON.stringify({ name: 'x', n: 1, [key]: 1 })), 400)
    const [issue] = body.errors as Array<{ path: string, message: string }>
    t.equal(issue?.path.length, 1000)
    t.ok(issue?.path.startsWith(`/${key.slice(0, 100)}`))
    t.ok(issue?.path.endsWith('…'))
    const long = problemOf(t, await app.inject({ url: `/${'p'.repeat(15_000)}` }), 404)
    t.equal((long.instance as string).length, 2000)
    t.equal((long.detail as string).length, 2000)
  })

  t.test('POST /test/echo does not coerce body types: "5" for an integer → 400', async (t) => {
    const body = problemOf(t, await post(JSON.stringify({ name: 'x', n: '5' })), 400)
    t.same(body.errors, [{ in: 'body', path: '/n', message: 'must be integer' }])
    problemOf(t, await post(JSON.stringify({ name: 123, n: 5 })), 400)
    problemOf(t, await post(JSON.stringify({ name: null, n: 5 })), 400)
  })

  t.test('GET /test/query coerces query strings: limit=20 and a repeated tag', async (t) => {
    const res = await app.inject({ url: '/test/query?limit=20&tag=a&tag=b' })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { limit: 20, tag: ['a', 'b'] })
    t.same((await app.inject({ url: '/test/query?tag=solo' })).json(), { limit: 20, tag: ['solo'] })
  })

  t.test('GET /test/query → 400 listing every failing query field', async (t) => {
    const body = problemOf(t, await app.inject({ url: '/test/query?limit=0&bogus=1' }), 400)
    t.same((body.errors as Array<{ in: string, path: string }>).map((error) => [error.in, error.path]).sort(), [['query', '/bogus'], ['query', '/limit']])
  })
})

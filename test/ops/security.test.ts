import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { build } from '../helper.js'

const ORIGIN = 'https://app.example.com'

t.test('security headers on every response: nosniff, no X-Powered-By, a CSP', async (t) => {
  const app = await build(t)
  for (const url of ['/', '/health/live', '/no/such/route', '/%E0%A4%A', '/docs', '/openapi.json', '/metrics']) {
    const res = await app.inject({ url })
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${url} nosniff`)
    t.notOk(res.headers['x-powered-by'], `${url} no X-Powered-By`)
    t.ok(res.headers['x-request-id'], `${url} X-Request-Id`)
  }
  const csp = String((await app.inject({ url: '/' })).headers['content-security-policy'])
  t.match(csp, /default-src 'self'/)
  t.match(csp, /frame-ancestors 'none'/)
  t.match(csp, /object-src 'none'/)
})

t.test('CORS with CORS_ORIGINS: an allowed origin gets Access-Control-Allow-Origin and the exposed headers', async (t) => {
  const app = await build(t, { CORS_ORIGINS: `${ORIGIN}, https://other.example.com` })
  const res = await app.inject({ url: '/health/live', headers: { origin: ORIGIN } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['access-control-allow-origin'], ORIGIN)
  const exposed = String(res.headers['access-control-expose-headers']).split(/,\s*/).map((name) => name.toLowerCase())
  for (const name of ['etag', 'location', 'link', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'x-request-id']) {
    t.ok(exposed.includes(name), `exposes ${name}`)
  }
  t.match(res.headers.vary, /Origin/)
  const problem = await app.inject({ url: '/no/such/route', headers: { origin: ORIGIN } })
  t.equal(problem.headers['access-control-allow-origin'], ORIGIN, 'problems carry CORS headers too')
})

t.test('CORS with CORS_ORIGINS: a disallowed origin gets no CORS headers', async (t) => {
  const app = await build(t, { CORS_ORIGINS: ORIGIN })
  const res = await app.inject({ url: '/health/live', headers: { origin: 'https://evil.example.com' } })
  t.equal(res.statusCode, 200)
  t.notOk(res.headers['access-control-allow-origin'])
  t.notOk(res.headers['access-control-expose-headers'])
})

t.test('CORS preflight: an allowed origin → 204 with methods and requested headers; others → problem', async (t) => {
  const app = await build(t, { CORS_ORIGINS: ORIGIN })
  const res = await app.inject({
    method: 'OPTIONS',
    url: '/api/v1/users/me',
    headers: { origin: ORIGIN, 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'authorization, content-type, idempotency-key' }
  })
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], ORIGIN)
  t.match(res.headers['access-control-allow-methods'], /PATCH/)
  t.match(res.headers['access-control-allow-methods'], /DELETE/)
  t.equal(res.headers['access-control-allow-headers'], 'authorization, content-type, idempotency-key')
  t.equal(res.headers['access-control-max-age'], '600')

  const refused = await app.inject({
    method: 'OPTIONS',
    url: '/health/live',
    headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'GET' }
  })
  t.notOk(refused.headers['access-control-allow-origin'])
  t.equal(refused.statusCode, 405)
  t.match(refused.headers['content-type'], /^application\/problem\+json/)
})

t.test('CORS without CORS_ORIGINS: no CORS headers for any origin', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/health/live', headers: { origin: ORIGIN } })
  t.notOk(res.headers['access-control-allow-origin'])
})

t.test('TRUST_PROXY: request.ip is the X-Forwarded-For client only behind a trusted proxy', async (t) => {
  const ipRoute = (app: FastifyInstance) => {
    app.get('/test/ip', async (request) => ({ ip: request.ip }))
  }
  const trusting = await build(t, { TRUST_PROXY: '127.0.0.1, 10.0.0.0/8' }, {}, ipRoute)
  const forwarded = { 'x-forwarded-for': '203.0.113.7' }
  t.same((await trusting.inject({ url: '/test/ip', remoteAddress: '127.0.0.1', headers: forwarded })).json(), { ip: '203.0.113.7' })
  t.same((await trusting.inject({ url: '/test/ip', remoteAddress: '10.1.2.3', headers: forwarded })).json(), { ip: '203.0.113.7' })
  t.same((await trusting.inject({ url: '/test/ip', remoteAddress: '198.51.100.1', headers: forwarded })).json(), { ip: '198.51.100.1' }, 'an untrusted peer is not believed')

  const plain = await build(t, {}, {}, ipRoute)
  t.same((await plain.inject({ url: '/test/ip', remoteAddress: '127.0.0.1', headers: forwarded })).json(), { ip: '127.0.0.1' }, 'unset: never believed')
})

t.test('GET /docs is served under the app CSP, which Swagger UI works under (checked in Chromium)', async (t) => {
  const app = await build(t)
  const csp = String((await app.inject({ url: '/docs/static/index.html' })).headers['content-security-policy'])
  t.match(csp, /style-src 'self' 'unsafe-inline'/)
  t.notMatch(csp, /upgrade-insecure-requests/, 'Try it out must work over plain HTTP')
  t.match(csp, /frame-ancestors 'none'/)
})

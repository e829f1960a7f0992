import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { authHeader, build, jwt, login, signUp } from '../helper.js'

function limited (t: Test, res: LightMyRequestResponse, window: 'minute' | 'hour') {
  t.equal(res.statusCode, 429)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.json().type, 'urn:catalog-api:problem:rate-limited')
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= (window === 'minute' ? 60 : 3600), `Retry-After ${retryAfter} s fits the ${window} window`)
  if (window === 'hour') t.ok(retryAfter > 60, 'the hour window sets Retry-After')
}

t.test('every route → 429 problem past RATE_LIMIT_PER_MINUTE per client, with RateLimit-* headers', async (t) => {
  const app = await build(t, { RATE_LIMIT_PER_MINUTE: '3' })
  for (let n = 1; n <= 3; n++) {
    const res = await app.inject({ url: '/', remoteAddress: '198.51.100.1' })
    t.equal(res.statusCode, 200, `request ${n} passes`)
    t.equal(res.headers['ratelimit-limit'], '3')
    t.equal(res.headers['ratelimit-remaining'], String(3 - n))
    t.match(res.headers['ratelimit-reset'], /^[0-9]+$/)
  }
  limited(t, await app.inject({ url: '/', remoteAddress: '198.51.100.1' }), 'minute')
  limited(t, await app.inject({ url: '/no/such/route', remoteAddress: '198.51.100.1' }), 'minute')
  t.equal((await app.inject({ url: '/', remoteAddress: '198.51.100.2' })).statusCode, 200, 'another client has its own budget')
})

t.test('every route → refused requests count too: invalid input and missing tokens', async (t) => {
  const app = await build(t, { RATE_LIMIT_PER_MINUTE: '3' })
  const ip = '198.51.100.9'
  t.equal((await app.inject({ url: '/api/v1/items?limit=0', remoteAddress: ip })).statusCode, 400)
  t.equal((await app.inject({ url: '/api/v1/users/me', remoteAddress: ip })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/api/v1/users', remoteAddress: ip, headers: { 'content-type': 'text/plain' }, payload: 'x' })).statusCode, 415)
  limited(t, await app.inject({ url: '/api/v1/items?limit=0', remoteAddress: ip }), 'minute')
})

t.test('every route → requests with an invalid, expired or revoked bearer token are 401 and count against the IP', async (t) => {
  const app = await build(t, { RATE_LIMIT_PER_MINUTE: '6' })
  const ip = '198.51.100.10'
  const user = await signUp(app)
  const revoked = await login(app, user.email)
  await app.inject({ method: 'POST', url: '/api/v1/auth/revoke', payload: { token: revoked.refresh_token } })
  const tokens = ['not.a.jwt', jwt({ sub: user.id, exp: 1 }), revoked.access_token]
  for (const [n, token] of tokens.entries()) {
    const res = await app.inject({ url: '/api/v1/items', remoteAddress: ip, headers: authHeader(token) })
    t.equal(res.statusCode, 401, `bad token ${n + 1} is refused`)
    t.match(res.headers['www-authenticate'], /error="invalid_token"/)
    t.equal(res.headers['ratelimit-remaining'], String(6 - 1 - n), `bad token ${n + 1} is counted`)
  }
  for (let n = 0; n < 3; n++) t.equal((await app.inject({ url: '/api/v1/users/me', remoteAddress: ip, headers: authHeader('x.y.z') })).statusCode, 401)
  limited(t, await app.inject({ url: '/api/v1/users/me', remoteAddress: ip, headers: authHeader('x.y.z') }), 'minute')
  limited(t, await app.inject({ url: '/', remoteAddress: ip }), 'minute')
  t.equal((await app.inject({ url: '/', remoteAddress: '198.51.100.11' })).statusCode, 200, 'another IP has its own budget')
})

t.test('every route → RATE_LIMIT_PER_HOUR is enforced alongside the minute window', async (t) => {
  const app = await build(t, { RATE_LIMIT_PER_MINUTE: '100', RATE_LIMIT_PER_HOUR: '2' })
  t.equal((await app.inject({ url: '/', remoteAddress: '198.51.100.3' })).headers['ratelimit-limit'], '2', 'the headers describe the tighter window')
  t.equal((await app.inject({ url: '/', remoteAddress: '198.51.100.3' })).statusCode, 200)
  limited(t, await app.inject({ url: '/', remoteAddress: '198.51.100.3' }), 'hour')
})

t.test('every route → a valid token is limited by user, not by IP', async (t) => {
  const app = await build(t, { RATE_LIMIT_PER_MINUTE: '4' })
  const user = await signUp(app)
  const tokens = await login(app, user.email)
  // Sign-up and login used 2 of this IP's 4; two more use it up.
  for (let n = 0; n < 2; n++) t.equal((await app.inject({ url: '/' })).statusCode, 200)
  limited(t, await app.inject({ url: '/' }), 'minute')
  const me = await app.inject({ url: '/api/v1/users/me', headers: authHeader(tokens) })
  t.equal(me.statusCode, 200, 'the user has a budget of their own')
  t.equal(me.headers['ratelimit-remaining'], '3')
})

t.test('probes, metrics and the docs are not limited', async (t) => {
  const app = await build(t, { RATE_LIMIT_PER_MINUTE: '1' })
  for (const url of ['/health/live', '/health/ready', '/metrics', '/docs', '/docs/static/swagger-ui.css', '/openapi.json']) {
    for (let n = 0; n < 3; n++) {
      const res = await app.inject({ url })
      t.equal(res.statusCode, 200, `${url} #${n + 1}`)
      t.notOk(res.headers['ratelimit-limit'], `${url} carries no RateLimit headers`)
    }
  }
})

t.test('OpenAPI documents 429 on limited operations only', async (t) => {
  const app = await build(t)
  const paths = app.swagger().paths ?? {}
  t.ok(paths['/']?.get?.responses?.['429'], 'GET / documents 429')
  t.ok(paths['/api/v1/users/me']?.get?.responses?.['429'], 'GET /api/v1/users/me documents 429')
  t.notOk(paths['/health/live']?.get?.responses?.['429'], 'GET /health/live does not')
})

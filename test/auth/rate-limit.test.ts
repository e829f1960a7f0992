import { randomInt } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { authHeader, build, login, signUp, TEST_PASSWORD, uniqueEmail, type TokenPair } from '../helper.js'

const LIMIT = 3

/** A random client address, so runs sharing a Redis never share a key. */
const randomIp = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`

const attempt = (app: FastifyInstance, username: string, remoteAddress: string) => app.inject({
  method: 'POST',
  url: '/api/v1/auth/token',
  remoteAddress,
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  payload: new URLSearchParams({ grant_type: 'password', username, password: 'wrong password' }).toString()
})

function limited (t: Test, res: Awaited<ReturnType<typeof attempt>>) {
  t.equal(res.statusCode, 429)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(res.headers['retry-after'], /^[1-9][0-9]*$/)
  t.equal(res.json().status, 429)
  t.equal(res.json().type, 'urn:catalog-api:problem:rate-limited')
}

async function redisReachable (): Promise<boolean> {
  const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => undefined)
  try {
    await redis.connect()
    return await redis.ping() === 'PONG'
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}

t.test('POST /api/v1/auth/token → 429 problem with Retry-After past the limit per (IP, username)', async (t) => {
  const app = await build(t, { AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT) })
  const ip = randomIp()
  const email = uniqueEmail()
  for (let i = 1; i <= LIMIT; i++) {
    const res = await attempt(app, i % 2 === 0 ? email.toUpperCase() : email, ip)
    t.equal(res.statusCode, 400, `attempt ${i} is answered`)
    t.equal(res.headers['ratelimit-limit'], String(LIMIT))
    t.equal(res.headers['ratelimit-remaining'], String(LIMIT - i))
    t.match(res.headers['ratelimit-reset'], /^[0-9]+$/)
  }
  limited(t, await attempt(app, email, ip))
  t.equal((await attempt(app, uniqueEmail(), ip)).statusCode, 400, 'another username from the same IP goes on')
  t.equal((await attempt(app, email, randomIp())).statusCode, 400, 'the same username from another IP goes on')
})

t.test('POST /api/v1/auth/token → 429 past five times the limit per IP, whatever the usernames', async (t) => {
  const app = await build(t, { AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT) })
  const ip = randomIp()
  for (let i = 1; i <= LIMIT * 5; i++) {
    t.equal((await attempt(app, uniqueEmail(), ip)).statusCode, 400)
  }
  limited(t, await attempt(app, uniqueEmail(), ip))
  t.equal((await attempt(app, uniqueEmail(), randomIp())).statusCode, 400, 'other clients go on')
})

t.test('POST /api/v1/auth/token → refresh requests count per IP only', async (t) => {
  const app = await build(t, { AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT) })
  const ip = randomIp()
  for (let i = 1; i <= LIMIT + 1; i++) {
    const res = await app.inject({ method: 'POST', url: '/api/v1/auth/token', remoteAddress: ip, payload: { grant_type: 'refresh_token', refresh_token: 'unknown' } })
    t.equal(res.statusCode, 400)
    t.equal(res.headers['ratelimit-limit'], String(LIMIT * 5))
  }
})

const redisUp = await redisReachable()

t.test('POST /api/v1/auth/token → with REDIS_URL the limit is shared by every instance', { skip: redisUp ? false : 'no Redis on 127.0.0.1:6379' }, async (t) => {
  const env = { AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT), REDIS_URL: 'redis://127.0.0.1:6379' }
  const [first, second] = [await build(t, env), await build(t, env)]
  const ip = randomIp()
  const email = uniqueEmail()
  // The clients connect in the background; until then requests are let through uncounted.
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal((await attempt(first, email, ip)).statusCode, 400)
  t.equal((await attempt(second, email, ip)).statusCode, 400)
  t.equal((await attempt(first, email, ip)).statusCode, 400)
  limited(t, await attempt(second, email, ip))
})

t.test('POST /api/v1/auth/token → an unreachable Redis lets requests through', async (t) => {
  const app = await build(t, { AUTH_RATE_LIMIT_PER_MINUTE: '1', REDIS_URL: 'redis://127.0.0.1:1' })
  const ip = randomIp()
  const email = uniqueEmail()
  for (let i = 0; i < 3; i++) t.equal((await attempt(app, email, ip)).statusCode, 400)
})

t.test('a route limited through config.rateLimit answers 429 as a problem with Retry-After', async (t) => {
  const app = await build(t, {}, {}, (app) => {
    app.get('/limited', { config: { rateLimit: { max: 1, timeWindow: 60_000 } } }, async () => ({ ok: true }))
  })
  const remoteAddress = randomIp()
  const first = await app.inject({ url: '/limited', remoteAddress })
  t.equal(first.statusCode, 200)
  t.equal(first.headers['ratelimit-limit'], '1')
  limited(t, await app.inject({ url: '/limited', remoteAddress }))
})

t.test('PUT /api/v1/users/me/password → 429 past AUTH_RATE_LIMIT_PER_MINUTE checks per user, whatever the IP', async (t) => {
  const app = await build(t, { AUTH_RATE_LIMIT_PER_MINUTE: String(LIMIT) })
  const change = (tokens: TokenPair, currentPassword: string, remoteAddress = randomIp()) => app.inject({
    method: 'PUT',
    url: '/api/v1/users/me/password',
    remoteAddress,
    headers: authHeader(tokens),
    payload: { currentPassword, newPassword: 'a brand new password' }
  })
  const user = await signUp(app)
  const tokens = await login(app, user.email)
  for (let i = 1; i <= LIMIT; i++) {
    const res = await change(tokens, `wrong guess ${i}`)
    t.equal(res.statusCode, 400, `guess ${i} is answered`)
    t.equal(res.json().type, 'urn:catalog-api:problem:wrong-password')
    t.equal(res.headers['ratelimit-remaining'], String(LIMIT - i))
  }
  limited(t, await change(tokens, TEST_PASSWORD))
  t.equal((await app.inject({ url: '/api/v1/users/me', headers: authHeader(tokens) })).statusCode, 200, 'the password was not changed: the login still works')
  const other = await login(app, (await signUp(app)).email)
  t.equal((await change(other, TEST_PASSWORD)).statusCode, 204, 'another user has a budget of their own')
})

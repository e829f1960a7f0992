import { randomBytes, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import type { LiveSession } from '../../src/auth/repository.js'
import { SessionCache } from '../../src/auth/session-cache.js'
import { buildApp } from '../../src/app.js'
import { quoteIdent, sharedPostgres, withClient } from '../databases.js'
import { authHeader, login, signUp, testConfig, TEST_PASSWORD } from '../helper.js'

const session = (userId = randomUUID(), expiresInMs = 60_000): LiveSession =>
  ({ id: randomUUID(), userId, scope: 'profile', isSuperuser: false, expiresAt: new Date(Date.now() + expiresInMs) })

/** A `load` that counts its calls and returns `found`. */
function loader (found: LiveSession | undefined) {
  const load = async () => {
    load.calls++
    return found
  }
  load.calls = 0
  return load
}

t.test('SessionCache: a live login is loaded once, then remembered until its time to live ends', async (t) => {
  const cache = new SessionCache({ ttlMs: 100, max: 10 })
  const live = session()
  const load = loader(live)
  t.equal(await cache.find(live.id, live.userId, Date.now(), load), live)
  t.equal(await cache.find(live.id, live.userId, Date.now(), load), live)
  t.equal(load.calls, 1, 'the second lookup is answered from memory')
  await sleep(150)
  await cache.find(live.id, live.userId, Date.now(), load)
  t.equal(load.calls, 2, 'past its time to live the database is asked again')
})

t.test('SessionCache: an ended login, another user\'s id or a login past its end is never answered from memory', async (t) => {
  const cache = new SessionCache({ ttlMs: 60_000, max: 10 })
  const ended = loader(undefined)
  t.equal(await cache.find(randomUUID(), randomUUID(), Date.now(), ended), undefined)
  t.equal(await cache.find(randomUUID(), randomUUID(), Date.now(), ended), undefined)
  t.equal(ended.calls, 2, 'a login that was not live is not remembered')

  const live = session(randomUUID(), 50)
  const load = loader(live)
  await cache.find(live.id, live.userId, Date.now(), load)
  await cache.find(live.id, randomUUID(), Date.now(), load)
  t.equal(load.calls, 2, 'a token naming another user asks the database')
  await cache.find(live.id, live.userId, Date.now() + 100, load)
  t.equal(load.calls, 3, 'a login past its end asks the database')
})

t.test('SessionCache: forgetting a login or a user\'s logins; a lookup running meanwhile is not remembered', async (t) => {
  const cache = new SessionCache({ ttlMs: 60_000, max: 10 })
  const userId = randomUUID()
  const [first, second, other] = [session(userId), session(userId), session()]
  const loads = new Map([first, second, other].map((live) => [live.id, loader(live)]))
  const find = (live: LiveSession) => cache.find(live.id, live.userId, Date.now(), loads.get(live.id) ?? loader(undefined))
  for (const live of [first, second, other]) await find(live)

  cache.forget({ sessionId: first.id })
  await find(first)
  await find(second)
  t.same([loads.get(first.id)?.calls, loads.get(second.id)?.calls], [2, 1], 'one login forgotten')

  cache.forget({ userId })
  await find(first)
  await find(second)
  await find(other)
  t.same([first, second, other].map((live) => loads.get(live.id)?.calls), [3, 2, 1], 'every login of the user forgotten, no other')

  // A lookup that read the login before a change committed must not keep what it read.
  const racing = session()
  let finish: (value: LiveSession) => void = () => undefined
  const slow = Object.assign(() => new Promise<LiveSession>((resolve) => { finish = resolve }), { calls: 0 })
  const lookup = cache.find(racing.id, racing.userId, Date.now(), slow)
  cache.forget({ sessionId: racing.id })
  finish(racing)
  await lookup
  const again = loader(undefined)
  t.equal(await cache.find(racing.id, racing.userId, Date.now(), again), undefined, 'the login is read again, and is now ended')
  t.equal(again.calls, 1)
})

const { target, skip } = await sharedPostgres()

/** How long after a change on one instance its access token is still accepted on another (Infinity past 2 s). */
async function refusedAfter (t: Test, app: FastifyInstance, token: string): Promise<number> {
  const started = performance.now()
  const answers = new Set<number>()
  let elapsed = Number.POSITIVE_INFINITY
  while (performance.now() - started < 2_000) {
    const { statusCode } = await app.inject({ url: '/api/v1/users/me', headers: authHeader(token) })
    answers.add(statusCode)
    if (statusCode === 401) {
      elapsed = performance.now() - started
      break
    }
    await sleep(20)
  }
  t.same([...answers].filter((status) => status !== 200 && status !== 401), [], 'accepted, then refused: nothing else')
  return elapsed
}

t.test('two instances: a login revoked, or a password changed, on one ends its access tokens on the other within a second', { skip }, async (t) => {
  const name = `catalog_sessions_${randomBytes(6).toString('hex')}`
  await withClient(target.maintenance, (client) => client.query(`create database ${quoteIdent(name)}`))
  t.teardown(() => withClient(target.maintenance, (client) => client.query(`drop database if exists ${quoteIdent(name)} with (force)`)))
  const config = testConfig({ DATABASE_URL: target.at(name) })
  const [a, b] = await Promise.all([buildApp(config), buildApp(config)])
  t.teardown(async () => { await Promise.all([a.close(), b.close()]) })

  const user = await signUp(a)
  const revoked = await login(a, user.email)
  t.equal((await b.inject({ url: '/api/v1/users/me', headers: authHeader(revoked) })).statusCode, 200, 'the token works on the other instance')
  const revoke = await a.inject({
    method: 'POST',
    url: '/api/v1/auth/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token: revoked.refresh_token }).toString()
  })
  t.equal(revoke.statusCode, 200)
  t.equal((await a.inject({ url: '/api/v1/users/me', headers: authHeader(revoked) })).statusCode, 401, 'refused at once where it was revoked')
  const afterRevoke = await refusedAfter(t, b, revoked.access_token)
  t.ok(afterRevoke < 1_000, `refused on the other instance after ${Math.round(afterRevoke)} ms`)

  const kept = await login(a, user.email)
  t.equal((await b.inject({ url: '/api/v1/users/me', headers: authHeader(kept) })).statusCode, 200)
  const change = await a.inject({
    method: 'PUT',
    url: '/api/v1/users/me/password',
    headers: authHeader(kept),
    payload: { currentPassword: TEST_PASSWORD, newPassword: 'another horse battery staple' }
  })
  t.equal(change.statusCode, 204)
  const afterChange = await refusedAfter(t, b, kept.access_token)
  t.ok(afterChange < 1_000, `refused on the other instance after ${Math.round(afterChange)} ms`)
})

import { createHash, randomUUID } from 'node:crypto'
import { and, eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { requires } from '../../schemas/common.js'
import { idempotencyKeys, items } from '../../src/db/schema.js'
import { canonicalJson } from '../../src/lib/canonical-json.js'
import { conflict } from '../../src/lib/problem.js'
import { authHeader, build, login, signUp } from '../helper.js'

/** Routes of the test's own that opt in: one that waits until released, one that fails until told otherwise. */
let entered: () => void = () => undefined
let release: () => void = () => undefined
let failures = { remaining: 0, status: 500 }
let calls = 0

function register (app: FastifyInstance) {
  const schema = { security: requires(['items:write']), body: { type: 'object', additionalProperties: true } }
  app.post('/test/slow', { schema, config: { idempotency: true } }, async (_request, reply) => {
    calls++
    await new Promise<void>((resolve) => {
      release = resolve
      entered()
    })
    return reply.code(201).header('location', '/test/slow/1').send({ done: true })
  })
  app.post('/test/flaky', { schema, config: { idempotency: true } }, async () => {
    calls++
    if (failures.remaining > 0) {
      failures.remaining--
      if (failures.status === 409) throw conflict('Not now')
      throw new Error('boom')
    }
    return { calls }
  })
}

const app = await build(t, {}, {}, register)
const user = await signUp(app)
const auth = authHeader(await login(app, user.email))
const otherUser = await signUp(app)
const otherAuth = authHeader(await login(app, otherUser.email))

const post = (key: string | undefined, payload: unknown, headers: Record<string, string> = auth, path = '/api/v1/items') =>
  app.inject({ method: 'POST', url: path, headers: { ...headers, ...(key === undefined ? {} : { 'idempotency-key': key }) }, payload: payload as Record<string, unknown> })

const storedKey = async (userId: string, key: string) =>
  (await app.db.select().from(idempotencyKeys).where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key))))[0]
const itemsNamed = async (name: string) => await app.db.select({ id: items.id }).from(items).where(eq(items.name, name))

t.test('POST /api/v1/items → a repeat with the same Idempotency-Key and body replays the first response; one row', async (t) => {
  const key = randomUUID()
  const first = await post(key, { name: 'Once', price: 19.99, tags: ['a', 'b'] })
  t.equal(first.statusCode, 201)
  t.equal(first.headers['idempotent-replayed'], undefined)
  const again = await post(key, { tags: ['a', 'b'], price: 19.99, name: 'Once' })
  t.equal(again.statusCode, 201)
  t.equal(again.body, first.body, 'the same body')
  t.equal(again.headers.location, first.headers.location)
  t.equal(again.headers.etag, first.headers.etag)
  t.equal(again.headers['content-type'], first.headers['content-type'])
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.equal((await itemsNamed('Once')).length, 1, 'one item')
  t.match(await storedKey(user.id, key), { state: 'completed', responseStatus: 201 })
})

t.test('POST /api/v1/items → the same key with another body is 422, and nothing is created', async (t) => {
  const key = randomUUID()
  t.equal((await post(key, { name: 'First body', price: 1 })).statusCode, 201)
  const other = await post(key, { name: 'Second body', price: 1 })
  t.equal(other.statusCode, 422)
  t.match(other.headers['content-type'], /^application\/problem\+json/)
  t.equal(other.json().type, 'urn:catalog-api:problem:idempotency-key-reused')
  t.equal((await itemsNamed('Second body')).length, 0)
  t.equal((await post(key, { name: 'First body', price: 1 })).statusCode, 201, 'the first body still replays')
})

t.test('POST /api/v1/items → 409 while a request with the same key is in progress', async (t) => {
  const key = randomUUID()
  const body = { name: 'Blocked', price: 1 }
  // The row another instance would hold while running this very request.
  await app.db.insert(idempotencyKeys).values({
    userId: user.id,
    key,
    fingerprint: createHash('sha256').update(`POST\n/api/v1/items\n${canonicalJson(body)}`).digest('hex'),
    expiresAt: new Date(Date.now() + 60_000)
  })
  const res = await post(key, body)
  t.equal(res.statusCode, 409)
  t.equal(res.json().type, 'urn:catalog-api:problem:idempotency-key-in-progress')
  t.equal(res.headers['retry-after'], '1')
  t.equal((await itemsNamed('Blocked')).length, 0)
})

t.test('POST /api/v1/items → an in_progress key past its lease was abandoned: the request takes it over', async (t) => {
  const body = { name: 'Abandoned', price: 1 }
  const fingerprint = createHash('sha256').update(`POST\n/api/v1/items\n${canonicalJson(body)}`).digest('hex')
  // The rows of an owner that died mid-request two minutes ago, and of one still running.
  const [stale, fresh] = [randomUUID(), randomUUID()]
  await app.db.insert(idempotencyKeys).values([
    { userId: user.id, key: stale, fingerprint, createdAt: new Date(Date.now() - 120_000), expiresAt: new Date(Date.now() + 60_000) },
    { userId: user.id, key: fresh, fingerprint, expiresAt: new Date(Date.now() + 60_000) }
  ])
  const res = await post(stale, body)
  t.equal(res.statusCode, 201, res.body)
  t.equal(res.headers['idempotent-replayed'], undefined)
  t.equal((await itemsNamed('Abandoned')).length, 1, 'one item')
  t.match(await storedKey(user.id, stale), { state: 'completed', responseStatus: 201 })
  t.equal((await post(stale, body)).headers['idempotent-replayed'], 'true', 'then replayed like any other')

  const blocked = await post(fresh, body)
  t.equal(blocked.statusCode, 409)
  t.equal((await itemsNamed('Abandoned')).length, 1, 'still one item')
})

t.test('POST with Idempotency-Key → a concurrent duplicate gets 409, then the completed response', async (t) => {
  const key = randomUUID()
  calls = 0
  const inside = new Promise<void>((resolve) => { entered = resolve })
  const first = post(key, { n: 1 }, auth, '/test/slow')
  await inside
  const duplicate = await post(key, { n: 1 }, auth, '/test/slow')
  t.equal(duplicate.statusCode, 409)
  release()
  const done = await first
  t.equal(done.statusCode, 201)
  const replay = await post(key, { n: 1 }, auth, '/test/slow')
  t.equal(replay.statusCode, 201)
  t.equal(replay.headers.location, '/test/slow/1')
  t.same(replay.json(), { done: true })
  t.equal(calls, 1, 'the handler ran once')
})

t.test('POST /api/v1/items → keys are per user: another user\'s same key is independent', async (t) => {
  const key = randomUUID()
  const mine = await post(key, { name: 'Shared key', price: 1 })
  const theirs = await post(key, { name: 'Shared key', price: 1 }, otherAuth)
  t.equal(mine.statusCode, 201)
  t.equal(theirs.statusCode, 201)
  t.not(theirs.json().id, mine.json().id)
  t.equal(theirs.json().ownerId, otherUser.id)
  t.equal(theirs.headers['idempotent-replayed'], undefined)
  const differentBody = await post(key, { name: 'Another body', price: 2 }, otherAuth)
  t.equal(differentBody.statusCode, 422, 'still checked within each user')
})

t.test('POST with Idempotency-Key → a 5xx frees the key so the retry runs; a 4xx is stored and replayed', async (t) => {
  calls = 0
  failures = { remaining: 1, status: 500 }
  const key = randomUUID()
  t.equal((await post(key, { a: 1 }, auth, '/test/flaky')).statusCode, 500)
  t.equal(await storedKey(user.id, key), undefined, 'the row is gone')
  const retry = await post(key, { a: 1 }, auth, '/test/flaky')
  t.equal(retry.statusCode, 200)
  t.same(retry.json(), { calls: 2 })

  failures = { remaining: 1, status: 409 }
  const conflictKey = randomUUID()
  const refused = await post(conflictKey, { a: 1 }, auth, '/test/flaky')
  t.equal(refused.statusCode, 409)
  const replayed = await post(conflictKey, { a: 1 }, auth, '/test/flaky')
  t.equal(replayed.statusCode, 409)
  t.equal(replayed.body, refused.body)
  t.match(replayed.headers['content-type'], /^application\/problem\+json/)
  t.equal(replayed.headers['idempotent-replayed'], 'true')
  t.equal(calls, 3, 'the stored 4xx did not run the handler again')
})

t.test('POST /api/v1/items → an expired key counts as new', async (t) => {
  const key = randomUUID()
  const first = await post(key, { name: 'Expiring', price: 1 })
  await app.db.update(idempotencyKeys).set({ expiresAt: new Date(Date.now() - 1000) })
    .where(and(eq(idempotencyKeys.userId, user.id), eq(idempotencyKeys.key, key)))
  const second = await post(key, { name: 'Expiring', price: 1 })
  t.equal(second.statusCode, 201)
  t.not(second.json().id, first.json().id)
  t.equal(second.headers['idempotent-replayed'], undefined)
  t.ok(((await storedKey(user.id, key))?.expiresAt.getTime() ?? 0) > Date.now(), 'kept again for another period')
})

t.test('purgeIdempotencyKeys → deletes expired keys only', async (t) => {
  const expired = [randomUUID(), randomUUID()]
  const fresh = randomUUID()
  for (const key of expired) {
    await app.db.insert(idempotencyKeys).values({ userId: user.id, key, fingerprint: 'x', state: 'completed', expiresAt: new Date(Date.now() - 1) })
  }
  await app.db.insert(idempotencyKeys).values({ userId: user.id, key: fresh, fingerprint: 'x', expiresAt: new Date(Date.now() + 60_000) })
  t.ok(await app.purgeIdempotencyKeys() >= 2)
  for (const key of expired) t.equal(await storedKey(user.id, key), undefined)
  t.ok(await storedKey(user.id, fresh))
})

t.test('POST /api/v1/items → without a key every request creates; a bad key is 400; a 400 body stores nothing', async (t) => {
  t.equal((await post(undefined, { name: 'Keyless', price: 1 })).statusCode, 201)
  t.equal((await post(undefined, { name: 'Keyless', price: 1 })).statusCode, 201)
  t.equal((await itemsNamed('Keyless')).length, 2)
  for (const key of ['', 'k'.repeat(256)]) {
    const res = await post(key, { name: 'Bad key', price: 1 })
    t.equal(res.statusCode, 400)
    t.same(res.json().errors.map((error: { in: string, path: string }) => [error.in, error.path]), [['header', '/idempotency-key']])
  }
  t.equal((await post('k'.repeat(255), { name: 'Long key', price: 1 })).statusCode, 201)
  const key = randomUUID()
  t.equal((await post(key, { name: 'Invalid', price: '1' })).statusCode, 400)
  t.equal(await storedKey(user.id, key), undefined)
  t.equal((await post(key, { name: 'Valid', price: 1 })).statusCode, 201)
})

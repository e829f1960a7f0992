import { setTimeout as sleep } from 'node:timers/promises'
import { asc, eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { Webhook as Verifier } from 'standardwebhooks'
import t, { type Test } from 'tap'
import { webhookDeliveries, webhooks } from '../../src/db/schema.js'
import { buildApp } from '../../src/app.js'
import { authHeader, build, freshDatabase, login, restartable, signUp, testConfig, type TokenPair } from '../helper.js'
import { finished, ndjson, startImport } from '../jobs/helpers.js'
import { receiver, type Handler, type Received } from './receiver.js'

// Receivers are Fastify servers on 127.0.0.1 started by each test; private targets are allowed for them.
const ENV = { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' }
const RETRY_BASE_MS = 200
// Receivers answer at once; the time allowed is for a machine running tests in parallel (the timeout test sets its own).
const tuning = { resources: { webhooks: { retryBaseMs: RETRY_BASE_MS, timeoutMs: 10_000, pollMs: 100 } } }
const app = await build(t, ENV, tuning)

interface Created { id: string, secret: string }

async function owner (on: FastifyInstance = app) {
  const user = await signUp(on)
  return { user, pair: await login(on, user.email, undefined, 'webhooks items:write') }
}

/**
 * An endpoint on `topics`. One of the shared app is deleted when the test ends, so the next tests' events are not sent
 * to its closed receiver; the other apps' databases end with their test.
 */
async function endpoint (t: Test, pair: TokenPair, url: string, topics = ['items'], on: FastifyInstance = app): Promise<Created> {
  const res = await on.inject({ method: 'POST', url: '/api/v1/webhooks', headers: authHeader(pair), payload: { url, topics } })
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`)
  const created = res.json<Created>()
  if (on === app) t.teardown(async () => { await app.db.delete(webhooks).where(eq(webhooks.id, created.id)) })
  return created
}

async function createItem (pair: TokenPair, name = 'Walnut desk', on: FastifyInstance = app) {
  const res = await on.inject({ method: 'POST', url: '/api/v1/items', headers: authHeader(pair), payload: { name, price: 19.99 } })
  if (res.statusCode !== 201) throw new Error(`item failed: ${res.statusCode} ${res.body}`)
  return res.json<{ id: string, name: string }>()
}

async function until<T> (probe: () => T | Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (done(value) || Date.now() > deadline) return value
    await sleep(25)
  }
}

const attemptsOf = (webhookId: string, on: FastifyInstance = app) =>
  on.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, webhookId)).orderBy(asc(webhookDeliveries.createdAt), asc(webhookDeliveries.id))

/** A receiver answering each request with the next status of `statuses` (the last one repeating), recording when. */
async function scripted (t: Test, statuses: number[], headers: Record<string, string> = {}) {
  const times: number[] = []
  let answered = 0
  const handler: Handler = async (_request, reply) => {
    times.push(Date.now())
    const status = statuses[Math.min(answered++, statuses.length - 1)] ?? 200
    return await reply.code(status).headers(status === 200 ? {} : headers).send('')
  }
  return { ...(await receiver(t, handler)), times }
}

const parse = (request: Received | undefined) => JSON.parse(request?.body ?? 'null') as { type: string, timestamp: string, data: { id: string, name?: string } }

t.test('an item event is POSTed to the endpoint, signed as Standard Webhooks says; the attempt is listed', async (t) => {
  const target = await receiver(t)
  const { pair } = await owner()
  const hook = await endpoint(t, pair, `${target.url}/hooks?source=catalog`)
  const item = await createItem(pair, 'Signed lamp')
  const received = await until(() => target.received.filter((request) => parse(request).data.id === item.id), (list) => list.length > 0)
  const [request] = received
  t.equal(request?.method, 'POST')
  t.equal(request?.url, '/hooks?source=catalog')
  t.match(request?.headers, { 'content-type': 'application/json', 'webhook-id': /^evt_\d+$/, 'webhook-timestamp': /^\d+$/, 'webhook-signature': /^v1,[A-Za-z0-9+/=]+$/ })
  const verified = new Verifier(hook.secret).verify(request?.body ?? '', request?.headers as Record<string, string>)
  t.match(verified, { type: 'item.created', data: { id: item.id, name: 'Signed lamp' } }, 'the signature verifies with the secret, as a receiver checks it')
  t.throws(() => new Verifier('whsec_' + Buffer.alloc(32, 1).toString('base64')).verify(request?.body ?? '', request?.headers as Record<string, string>), 'another secret does not verify')

  const attempts = await until(() => attemptsOf(hook.id), (rows) => rows.length > 0)
  t.match(attempts, [{ eventId: Number(request?.headers['webhook-id']?.toString().slice(4)), event: 'item.created', attempt: 1, outcome: 'delivered', statusCode: 200, error: null }])
  const listed = await app.inject({ method: 'GET', url: `/api/v1/webhooks/${hook.id}/deliveries`, headers: authHeader(pair) })
  t.match(listed.json(), { data: [{ event: 'item.created', outcome: 'delivered', statusCode: 200 }], nextCursor: null })
})

t.test('private topics reach only their owner\'s endpoints; inactive endpoints get nothing', async (t) => {
  const target = await receiver(t)
  const ada = await owner()
  const bob = await owner()
  const adaHook = await endpoint(t, ada.pair, `${target.url}/ada`, [`user:${ada.user.id}`])
  const bobHook = await endpoint(t, bob.pair, `${target.url}/bob`, ['items'])
  const off = await endpoint(t, bob.pair, `${target.url}/off`, ['items'])
  await app.db.update(webhooks).set({ active: false }).where(eq(webhooks.id, off.id))
  const job = await startImport(app, ada.pair, { filename: 'rows.ndjson', content: ndjson([{ name: 'Imported', price: 1 }]) })
  await finished(app, ada.pair, job.id)
  const adas = await until(() => target.received.filter((request) => request.url === '/ada').map(parse), (list) => list.some((event) => (event.data as { status?: string }).status === 'succeeded'))
  t.ok(adas.length > 0 && adas.every((event) => event.type === 'job.updated' && event.data.id === job.id), 'ada gets her job\'s events')
  await until(() => attemptsOf(bobHook.id), (rows) => rows.length > 0)
  t.same(target.received.filter((request) => request.url === '/bob').map((request) => parse(request).type), ['item.created'], 'bob gets the public item event, not ada\'s job')
  t.equal(target.received.filter((request) => request.url === '/off').length, 0)
  t.ok((await attemptsOf(adaHook.id)).every((row) => row.outcome === 'delivered'))
})

t.test('a 503 is retried with a growing, jittered delay until delivered; each attempt is recorded', async (t) => {
  const target = await scripted(t, [503, 503, 200])
  const { pair } = await owner()
  const hook = await endpoint(t, pair, target.url)
  await createItem(pair)
  const attempts = await until(() => attemptsOf(hook.id), (rows) => rows.length >= 3)
  t.match(attempts, [
    { attempt: 1, outcome: 'retrying', statusCode: 503 },
    { attempt: 2, outcome: 'retrying', statusCode: 503 },
    { attempt: 3, outcome: 'delivered', statusCode: 200 }
  ])
  const [first = 0, second = 0, third = 0] = target.times
  t.ok(second - first >= RETRY_BASE_MS / 2, `the first retry waits at least half the base delay (${second - first} ms)`)
  t.ok(third - second >= RETRY_BASE_MS, `the second waits at least the base delay (${third - second} ms)`)
  const ids = new Set(target.received.map((request) => request.headers['webhook-id']))
  t.equal(ids.size, 1, 'every attempt carries the same webhook-id, so the receiver can tell a repeat')
})

t.test('a 429 is retried no sooner than its Retry-After', async (t) => {
  const target = await scripted(t, [429, 200], { 'retry-after': '1' })
  const { pair } = await owner()
  const hook = await endpoint(t, pair, target.url)
  await createItem(pair)
  await until(() => attemptsOf(hook.id), (rows) => rows.length >= 2)
  const [first = 0, second = 0] = target.times
  t.ok(second - first >= 1000, `waited ${second - first} ms`)
})

t.test('a 4xx other than 408 and 429 is not retried; a redirect is not followed', async (t) => {
  const elsewhere = await receiver(t)
  const target = await receiver(t, async (request, reply) =>
    request.url === '/gone' ? await reply.code(400).send('no') : await reply.redirect(`${elsewhere.url}/moved`, 302))
  const { pair } = await owner()
  const gone = await endpoint(t, pair, `${target.url}/gone`)
  const moved = await endpoint(t, pair, `${target.url}/moved`)
  await createItem(pair)
  t.match(await until(() => attemptsOf(gone.id), (rows) => rows.length > 0), [{ attempt: 1, outcome: 'failed', statusCode: 400 }])
  t.match(await until(() => attemptsOf(moved.id), (rows) => rows.length > 0), [{ attempt: 1, outcome: 'failed', statusCode: 302 }])
  await sleep(3 * RETRY_BASE_MS)
  t.equal((await attemptsOf(gone.id)).length, 1, 'no second attempt')
  t.equal(elsewhere.received.length, 0, 'the redirect was not followed')
})

t.test('an endpoint that keeps failing is disabled with the reason, and gets nothing more', async (t) => {
  const target = await scripted(t, [410])
  const { pair } = await owner()
  const hook = await endpoint(t, pair, target.url)
  for (let index = 0; index < 5; index++) await createItem(pair, `Item ${index}`)
  const attempts = await until(() => attemptsOf(hook.id), (rows) => rows.length >= 5)
  t.equal(attempts.length, 5)
  const read = await until(async () => (await app.inject({ method: 'GET', url: `/api/v1/webhooks/${hook.id}`, headers: authHeader(pair) })).json<{ active: boolean, disabledReason: string | null, version: number }>(), (body) => !body.active)
  t.match(read, { active: false, disabledReason: /^Disabled after 5 deliveries in a row failed; the last: HTTP 410$/, version: 2 })
  await createItem(pair, 'After')
  await sleep(5 * 100)
  t.equal(target.received.length, 5)
  const retry = await app.inject({ method: 'POST', url: `/api/v1/webhooks/${hook.id}/deliveries/${attempts[0]?.id ?? ''}/retry`, headers: authHeader(pair) })
  t.equal(retry.statusCode, 409)
})

t.test('POST …/deliveries/{id}/retry → 202 and the event is delivered again, with the same webhook-id', async (t) => {
  const target = await receiver(t)
  const { pair } = await owner()
  const hook = await endpoint(t, pair, target.url)
  await createItem(pair)
  const [first] = await until(() => attemptsOf(hook.id), (rows) => rows.length > 0)
  const res = await app.inject({ method: 'POST', url: `/api/v1/webhooks/${hook.id}/deliveries/${first?.id ?? ''}/retry`, headers: authHeader(pair) })
  t.equal(res.statusCode, 202)
  t.equal(res.body, '')
  const attempts = await until(() => attemptsOf(hook.id), (rows) => rows.length >= 2)
  t.match(attempts, [{ outcome: 'delivered', eventId: first?.eventId }, { attempt: 1, outcome: 'delivered', eventId: first?.eventId }])
  t.equal(target.received.length, 2)
  t.equal(target.received[0]?.headers['webhook-id'], target.received[1]?.headers['webhook-id'])
  t.equal(target.received[0]?.body, target.received[1]?.body)
})

t.test('a receiver that never answers times out; the attempt says so and is retried', async (t) => {
  const impatient = await build(t, ENV, { resources: { webhooks: { ...tuning.resources.webhooks, timeoutMs: 1000 } } })
  const target = await receiver(t, async () => await new Promise(() => {}))
  const { pair } = await owner(impatient)
  const hook = await endpoint(t, pair, target.url, ['items'], impatient)
  await createItem(pair, 'Waited for', impatient)
  const [attempt] = await until(() => attemptsOf(hook.id, impatient), (rows) => rows.length > 0)
  t.match(attempt, { attempt: 1, outcome: 'retrying', statusCode: null, error: /timed out/ })
  t.ok((attempt?.durationMs ?? 0) >= 900 && (attempt?.durationMs ?? 0) < 5000, `took ${attempt?.durationMs ?? 0} ms`)
})

t.test('deliveries to different endpoints run at the same time', async (t) => {
  let inFlight = 0
  let most = 0
  const slow: Handler = async () => {
    most = Math.max(most, ++inFlight)
    await sleep(400)
    inFlight--
    return 'ok'
  }
  const one = await receiver(t, slow)
  const two = await receiver(t, slow)
  const { pair } = await owner()
  const first = await endpoint(t, pair, one.url)
  const second = await endpoint(t, pair, two.url)
  await createItem(pair)
  await until(async () => [...await attemptsOf(first.id), ...await attemptsOf(second.id)], (rows) => rows.length >= 2)
  t.equal(most, 2, 'both requests were in flight together')
})

t.test('rotating the secret signs the next deliveries with the new one only', async (t) => {
  const target = await receiver(t)
  const { pair } = await owner()
  const hook = await endpoint(t, pair, target.url)
  const rotated = (await app.inject({ method: 'POST', url: `/api/v1/webhooks/${hook.id}/secret`, headers: authHeader(pair) })).json<Created>()
  await createItem(pair)
  const [request] = await until(() => target.received, (list) => list.length > 0)
  const headers = request?.headers as Record<string, string>
  t.ok(new Verifier(rotated.secret).verify(request?.body ?? '', headers))
  t.throws(() => new Verifier(hook.secret).verify(request?.body ?? '', headers))
})

t.test('a retry scheduled before a restart is made by the next instance', async (t) => {
  const target = await scripted(t, [503, 200])
  const start = await restartable(t, ENV)
  const slowRetry = { resources: { webhooks: { ...tuning.resources.webhooks, retryBaseMs: 2000 } } }
  const first = await start(slowRetry)
  const { pair } = await owner(first.app)
  const hook = await endpoint(t, pair, target.url, ['items'], first.app)
  await createItem(pair, 'Before the restart', first.app)
  await until(() => attemptsOf(hook.id, first.app), (rows) => rows.length > 0)
  await first.stop()
  t.equal(target.received.length, 1)
  const second = await start(slowRetry)
  const attempts = await until(() => attemptsOf(hook.id, second.app), (rows) => rows.length >= 2)
  t.match(attempts, [{ attempt: 1, outcome: 'retrying', statusCode: 503 }, { attempt: 2, outcome: 'delivered', statusCode: 200 }])
  t.equal(target.received.length, 2)
})

t.test('two instances on one Postgres queue each event once, and either delivers it', { skip: process.env.DATABASE_URL === undefined && 'needs DATABASE_URL' }, async (t) => {
  const target = await receiver(t)
  const { databaseUrl } = await freshDatabase(t)
  const instances = await Promise.all([0, 1].map(async () => {
    const instance = await buildApp(testConfig({ ...ENV, DATABASE_URL: databaseUrl ?? '' }), tuning)
    t.teardown(() => instance.close())
    await instance.ready()
    return instance
  }))
  const [a = app, b = app] = instances
  const { pair } = await owner(a)
  const hook = await endpoint(t, pair, target.url, ['items'], a)
  const made = await Promise.all(Array.from({ length: 20 }, async (_, index) => await createItem(pair, `Item ${index}`, index % 2 === 0 ? a : b)))
  const attempts = await until(() => attemptsOf(hook.id, a), (rows) => rows.length >= 20)
  await sleep(500)
  t.equal(target.received.length, 20, 'each event delivered once')
  t.same(new Set(target.received.map((request) => parse(request).data.id)), new Set(made.map((item) => item.id)))
  t.equal(new Set(attempts.map((row) => row.eventId)).size, 20)
})

import { readFile } from 'node:fs/promises'
import t from 'tap'
import type { Item } from '../../schemas/items.js'
import type { Job } from '../../schemas/jobs.js'
import { authHeader, build, jwt } from '../helper.js'
import { finished, multipart, ndjson, startImport } from '../jobs/helpers.js'
import { connect, createItem, subscribe, user } from './helpers.js'

const app = await build(t, { CORS_ORIGINS: 'https://shop.example.com' })
const ada = await user(app)
const bob = await user(app)

t.test('GET /api/v1/ws without an upgrade → 426 problem with Upgrade: websocket', async (t) => {
  const res = await app.inject({ url: '/api/v1/ws' })
  t.equal(res.statusCode, 426)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.headers.upgrade, 'websocket')
  t.match(res.json(), { status: 426, type: 'urn:catalog-api:problem:upgrade-required', instance: '/api/v1/ws' })
})

t.test('GET /api/v1/ws stays out of the OpenAPI document', async (t) => {
  const document = (await app.inject({ url: '/openapi.json' })).json<{ paths: Record<string, unknown> }>()
  t.notOk('/api/v1/ws' in document.paths)
  t.ok('/api/v1/events' in document.paths)
})

t.test('anonymous socket: echo, ping and a public subscription', async (t) => {
  const socket = await connect(t, app)
  t.same(await socket.ask({ type: 'echo', data: { hello: ['world', 1, null] } }), { type: 'echo', data: { hello: ['world', 1, null] } })
  t.same(await socket.ask({ type: 'echo', data: 'text' }), { type: 'echo', data: 'text' })
  t.same(await socket.ask({ type: 'ping' }), { type: 'pong' })
  t.same(await socket.ask({ type: 'subscribe', topics: ['items'] }), { type: 'subscribed', topics: ['items'] })
})

t.test('item.created, item.updated, item.deleted carry exactly what the API answered, in order', async (t) => {
  const socket = await connect(t, app)
  await subscribe(socket, ['items'])
  const created = await createItem(app, ada.token, { name: 'Oak shelf', description: 'Three boards', price: 19.99, tags: ['oak'] })
  const patched = await app.inject({ method: 'PATCH', url: `/api/v1/items/${created.id}`, headers: authHeader(ada.token), payload: { price: 17.5 } })
  const replaced = await app.inject({ method: 'PUT', url: `/api/v1/items/${created.id}`, headers: authHeader(ada.token), payload: { name: 'Oak shelves', price: 18 } })
  const deleted = await app.inject({ method: 'DELETE', url: `/api/v1/items/${created.id}`, headers: authHeader(ada.token) })
  t.equal(deleted.statusCode, 204)

  const events = [await socket.next(), await socket.next(), await socket.next(), await socket.next()]
  t.same(events.map((event) => [event.type, event.topic, event.name]), [
    ['event', 'items', 'item.created'], ['event', 'items', 'item.updated'], ['event', 'items', 'item.updated'], ['event', 'items', 'item.deleted']
  ])
  t.same(events[0]?.data, created, 'item.created carries the created Item')
  t.same(events[1]?.data, patched.json<Item>(), 'item.updated carries the patched Item')
  t.same(events[2]?.data, replaced.json<Item>(), 'item.updated carries the replaced Item')
  t.same(events[3]?.data, { id: created.id }, 'item.deleted carries only the id')
  const ids = events.map((event) => Number(event.id))
  t.ok(ids.every((id, index) => index === 0 || id > (ids[index - 1] ?? 0)), 'ids increase')
  for (const event of events) {
    t.match(event.id, /^[1-9][0-9]*$/)
    t.ok(!Number.isNaN(Date.parse(String(event.at))), 'at is a date-time')
    t.same(Object.keys(event), ['type', 'id', 'topic', 'name', 'data', 'at'])
  }
  t.same(await socket.rest(), [], 'nothing else')
})

t.test('a change that fails (412) emits nothing', async (t) => {
  const socket = await connect(t, app)
  await subscribe(socket, ['items'])
  const item = await createItem(app, ada.token)
  t.equal((await socket.next()).name, 'item.created')
  const res = await app.inject({ method: 'PATCH', url: `/api/v1/items/${item.id}`, headers: { ...authHeader(ada.token), 'if-match': '"stale"' }, payload: { price: 1 } })
  t.equal(res.statusCode, 412)
  t.same(await socket.rest(), [])
})

t.test('auth: access_token query, bearer subprotocol and Authorization header all sign the socket in', async (t) => {
  for (const via of ['query', 'protocol', 'header'] as const) {
    const socket = await connect(t, app, { token: ada.token, via })
    t.same(await socket.ask({ type: 'subscribe', topics: [`user:${ada.id}`] }), { type: 'subscribed', topics: [`user:${ada.id}`] }, via)
  }
})

t.test('auth: a bad, expired or foreign-signed token is refused with 401 before the upgrade', async (t) => {
  const now = Math.floor(Date.now() / 1000)
  const [, payload = ''] = ada.token.access_token.split('.')
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>
  const expired = jwt({ ...claims, iat: now - 3600, exp: now - 60 })
  const foreign = jwt(claims, { secret: 'another-secret-that-is-at-least-32-characters' })
  for (const [name, token] of [['garbage', 'not-a-token'], ['expired', expired], ['foreign', foreign]] as const) {
    for (const via of ['query', 'protocol'] as const) {
      await t.rejects(connect(t, app, { token, via }), /Unexpected server response: 401/, `${name} via ${via}`)
    }
  }
  const res = await app.inject({ url: '/api/v1/ws?access_token=not-a-token', headers: { connection: 'upgrade', upgrade: 'websocket' } })
  t.equal(res.statusCode, 401)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(res.headers['www-authenticate'], /^Bearer realm="catalog-api", error="invalid_token"/)
})

t.test('origin: another site is refused with 403; this server and CORS_ORIGINS are let in', async (t) => {
  await t.rejects(connect(t, app, { headers: { origin: 'https://evil.example.net' } }), /Unexpected server response: 403/)
  await t.rejects(connect(t, app, { token: ada.token, headers: { origin: 'null' } }), /Unexpected server response: 403/)
  const refused = await app.inject({ url: '/api/v1/ws', headers: { origin: 'https://evil.example.net' } })
  t.equal(refused.statusCode, 403)
  t.match(refused.json(), { type: 'urn:catalog-api:problem:origin-not-allowed' })
  const allowed = await connect(t, app, { headers: { origin: 'https://shop.example.com' } })
  t.same(await allowed.ask({ type: 'ping' }), { type: 'pong' })
  const same = await connect(t, app, { headers: { origin: 'http://api.example.com:8080', host: 'api.example.com:8080' } })
  t.same(await same.ask({ type: 'ping' }), { type: 'pong' })
})

t.test('invalid messages get invalid_message naming what is wrong, and the socket stays open', async (t) => {
  const socket = await connect(t, app)
  const cases: Array<[unknown, RegExp]> = [
    ['{"type": "echo"', /not valid JSON/],
    ['[1, 2]', /a JSON object with a type/],
    ['"ping"', /a JSON object with a type/],
    [{ data: 1 }, /^\/type must be one of echo, ping, subscribe, unsubscribe$/],
    [{ type: 'shout' }, /^\/type must be one of echo, ping, subscribe, unsubscribe$/],
    [{ type: 'echo' }, /^\/data is required$/],
    [{ type: 'ping', extra: true }, /^\/extra is not a known field$/],
    [{ type: 'subscribe' }, /^\/topics is required$/],
    [{ type: 'subscribe', topics: [] }, /^\/topics must NOT have fewer than 1 items$/],
    [{ type: 'subscribe', topics: ['items', 'orders'] }, /^\/topics\/1 must be a topic: items, or user:<your user id>$/],
    [{ type: 'subscribe', topics: ['items', 'items'] }, /^\/topics must NOT have duplicate items/],
    [{ type: 'subscribe', topics: ['items'], since: '-1' }, /^\/since must be an event id/],
    [{ type: 'subscribe', topics: ['items'], since: 12 }, /^\/since must be string$/],
    [{ type: 'unsubscribe', topics: 'items' }, /^\/topics must be array$/]
  ]
  for (const [message, expected] of cases) {
    const answer = await socket.ask(message)
    t.equal(answer.type, 'error', JSON.stringify(message))
    t.equal(answer.code, 'invalid_message')
    t.match(answer.message, expected)
  }
  socket.socket.send(Buffer.from('{"type":"ping"}'), { binary: true })
  t.match(await socket.next(), { type: 'error', code: 'invalid_message', message: /text frames/ })
  t.same(await socket.ask({ type: 'ping' }), { type: 'pong' }, 'still open')
})

t.test('forbidden_topic: private topics without a token, or of another user', async (t) => {
  const anonymous = await connect(t, app)
  t.match(await anonymous.ask({ type: 'subscribe', topics: ['items', `user:${ada.id}`] }), {
    type: 'error', code: 'forbidden_topic', message: `Private topics need an access token: user:${ada.id}`
  })
  const asBob = await connect(t, app, { token: bob.token })
  t.match(await asBob.ask({ type: 'subscribe', topics: [`user:${ada.id}`] }), { type: 'error', code: 'forbidden_topic', message: /Only its own user/ })
  // Nothing was subscribed, not even the public topic asked for with it.
  await createItem(app, ada.token)
  t.same(await anonymous.rest(), [])
})

t.test('job.updated reaches the creator\'s private topic only; the imported items are public', async (t) => {
  const mine = await connect(t, app, { token: ada.token })
  await subscribe(mine, [`user:${ada.id}`])
  const others = await connect(t, app, { token: bob.token })
  await subscribe(others, ['items', `user:${bob.id}`])
  const queued = await startImport(app, ada.token, { filename: 'items.ndjson', content: ndjson([{ name: 'A', price: 1 }, { name: 'B', price: 2 }, { name: 'C', price: -1 }]) })
  const done = await finished(app, ada.token, queued.id)

  const updates: Job[] = []
  for (let message = await mine.next(); ; message = await mine.next()) {
    t.match(message, { type: 'event', topic: `user:${ada.id}`, name: 'job.updated' })
    updates.push(message.data as Job)
    if ((message.data as Job).status === 'succeeded') break
  }
  t.same(updates[0], queued, 'the first update is the queued job, as the 202 answered')
  t.same(updates.at(-1), done, 'the last one is the finished job, as GET answers it')
  t.same(updates.map((job) => job.status), ['queued', 'running', ...updates.slice(2, -1).map(() => 'running'), 'succeeded'])
  t.ok(updates.every((job, index) => index === 0 || job.progress >= (updates[index - 1]?.progress ?? 0)), 'progress never goes back')

  const seen = await others.rest()
  t.same(seen.map((message) => message.name), ['item.created', 'item.created'], 'the other user sees the items, not the job')
})

t.test('unsubscribe → unsubscribed, and no more events on those topics', async (t) => {
  const socket = await connect(t, app)
  await subscribe(socket, ['items'])
  t.same(await socket.ask({ type: 'unsubscribe', topics: ['items'] }), { type: 'unsubscribed', topics: ['items'] })
  await createItem(app, ada.token)
  t.same(await socket.rest(), [])
  t.same(await socket.ask({ type: 'unsubscribe', topics: ['items'] }), { type: 'unsubscribed', topics: ['items'] }, 'idempotent')
})

t.test('deleting a user announces the deletion of each of their items', async (t) => {
  const carl = await user(app)
  const first = await createItem(app, carl.token)
  const second = await createItem(app, carl.token)
  const socket = await connect(t, app)
  await subscribe(socket, ['items'])
  const res = await app.inject({ method: 'DELETE', url: '/api/v1/users/me', headers: authHeader(carl.token) })
  t.equal(res.statusCode, 204)
  const events = [await socket.next(), await socket.next()]
  t.same(events.map((event) => event.name), ['item.deleted', 'item.deleted'])
  t.same(events.map((event) => (event.data as { id: string }).id).sort(), [first.id, second.id].sort())
})

t.test('an image upload is an item.updated carrying the new imageUrl and version', async (t) => {
  const item = await createItem(app, ada.token)
  const socket = await connect(t, app)
  await subscribe(socket, ['items'])
  const body = multipart([{ name: 'file', filename: 'pixel.png', type: 'image/png', content: await readFile(new URL('../fixtures/pixel.png', import.meta.url)) }])
  const res = await app.inject({ method: 'PUT', url: `/api/v1/items/${item.id}/image`, headers: { ...authHeader(ada.token), ...body.headers }, payload: body.payload })
  t.equal(res.statusCode, 200)
  const event = await socket.next()
  t.match(event, { name: 'item.updated', data: { id: item.id, version: 2, imageUrl: `/api/v1/items/${item.id}/image` } })
  t.same(event.data, res.json())
})

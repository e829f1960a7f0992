import { eq } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { webhookDeliveries, webhooks } from '../../src/db/schema.js'
import { authHeader, build, login, signUp, type TokenPair } from '../helper.js'

const ROOT = { FIRST_SUPERUSER_EMAIL: 'root@example.com', FIRST_SUPERUSER_PASSWORD: 'root-password-123' }
// Receivers of these tests are never called: an endpoint is only created, read and changed here.
const app = await build(t, { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', AUTH_RATE_LIMIT_PER_MINUTE: '1000', ...ROOT })
const admin = await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD, 'admin')

type Response = Awaited<ReturnType<typeof app.inject>>
interface Webhook { id: string, ownerId: string, url: string, topics: string[], description: string | null, active: boolean, disabledReason: string | null, version: number, secret?: string }

function problem (t: Test, res: Response, status: number, path?: string) {
  t.equal(res.statusCode, status, res.body)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  if (path !== undefined) t.same([...new Set(res.json<{ errors: Array<{ path: string }> }>().errors.map((error) => error.path))], [path])
}

async function owner () {
  const user = await signUp(app)
  return { user, pair: await login(app, user.email, undefined, 'webhooks profile') }
}

const create = async (pair: TokenPair, body: Record<string, unknown>) =>
  await app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: authHeader(pair), payload: body })

async function created (pair: TokenPair, body: Record<string, unknown> = {}) {
  const res = await create(pair, { url: 'http://127.0.0.1:9/catalog', topics: ['items'], ...body })
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`)
  return { webhook: res.json<Webhook>(), etag: String(res.headers.etag) }
}

t.test('POST /api/v1/webhooks → 201 with the secret shown once, Location and ETag; stored encrypted', async (t) => {
  const { user, pair } = await owner()
  const res = await create(pair, { url: 'http://127.0.0.1:9/catalog', topics: ['items', `user:${user.id}`], description: 'Storefront' })
  t.equal(res.statusCode, 201, res.body)
  const body = res.json<Webhook>()
  t.match(body, { ownerId: user.id, url: 'http://127.0.0.1:9/catalog', topics: ['items', `user:${user.id}`], description: 'Storefront', active: true, disabledReason: null, version: 1 })
  t.match(body.secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
  t.equal(res.headers.location, `/api/v1/webhooks/${body.id}`)
  t.equal(res.headers.etag, `"${body.id}.1"`)
  const [row] = await app.db.select().from(webhooks).where(eq(webhooks.id, body.id))
  t.ok(row !== undefined && !row.secret.includes((body.secret ?? '').slice(6)), 'the secret is not stored as it is')

  const read = await app.inject({ method: 'GET', url: `/api/v1/webhooks/${body.id}`, headers: authHeader(pair) })
  t.equal(read.statusCode, 200)
  t.notOk('secret' in read.json(), 'never listed again')
  t.equal(read.headers.etag, res.headers.etag)
  const listed = await app.inject({ method: 'GET', url: '/api/v1/webhooks', headers: authHeader(pair) })
  t.same(listed.json<{ data: Webhook[] }>().data.map((webhook) => [webhook.id, 'secret' in webhook]), [[body.id, false]])
})

t.test('POST /api/v1/webhooks → 401 without a token, 403 without the webhooks scope (not granted by default)', async (t) => {
  const user = await signUp(app)
  const plain = await login(app, user.email)
  t.equal(plain.scope, 'profile items:write')
  const unauthenticated = await app.inject({ method: 'POST', url: '/api/v1/webhooks', payload: { url: 'https://a.test/', topics: ['items'] } })
  problem(t, unauthenticated, 401)
  const forbidden = await create(plain, { url: 'https://a.test/', topics: ['items'] })
  problem(t, forbidden, 403)
  t.match(forbidden.headers['www-authenticate'], /insufficient_scope.*scope="webhooks"/)
  t.equal((await app.db.select().from(webhooks).where(eq(webhooks.ownerId, user.id))).length, 0)
})

t.test('POST /api/v1/webhooks → 400 for a bad URL, topics and fields; 415 for a merge patch', async (t) => {
  const { pair } = await owner()
  const other = await signUp(app)
  problem(t, await create(pair, { url: 'ftp://a.test/', topics: ['items'] }), 400, '/url')
  problem(t, await create(pair, { url: 'not a url', topics: ['items'] }), 400, '/url')
  problem(t, await create(pair, { url: 'https://user:pw@a.test/', topics: ['items'] }), 400, '/url')
  problem(t, await create(pair, { url: 'https://a.test/', topics: [] }), 400, '/topics')
  problem(t, await create(pair, { url: 'https://a.test/', topics: ['orders'] }), 400, '/topics/0')
  problem(t, await create(pair, { url: 'https://a.test/', topics: ['items', `user:${other.id}`] }), 400, '/topics/1')
  problem(t, await create(pair, { url: 'https://a.test/', topics: ['items'], secret: 'mine' }), 400, '/secret')
  const patchType = await app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: { ...authHeader(pair), 'content-type': 'application/merge-patch+json' }, payload: '{"url":"https://a.test/","topics":["items"]}' })
  problem(t, patchType, 415)
})

t.test('GET /api/v1/webhooks → only your own, newest first, a page at a time with Link', async (t) => {
  const { pair } = await owner()
  const mine = [await created(pair), await created(pair), await created(pair)].map(({ webhook }) => webhook.id)
  await created((await owner()).pair)
  const first = await app.inject({ method: 'GET', url: '/api/v1/webhooks?limit=2', headers: authHeader(pair) })
  const page = first.json<{ data: Webhook[], nextCursor: string }>()
  t.same(page.data.map((webhook) => webhook.id), [mine[2], mine[1]])
  t.match(first.headers.link, /^<\/api\/v1\/webhooks\?limit=2&cursor=[^>]+>; rel="next"$/)
  const second = await app.inject({ method: 'GET', url: `/api/v1/webhooks?limit=2&cursor=${page.nextCursor}`, headers: authHeader(pair) })
  t.same(second.json<{ data: Webhook[], nextCursor: null }>(), { data: [second.json<{ data: Webhook[] }>().data[0]], nextCursor: null })
  t.equal(second.json<{ data: Webhook[] }>().data[0]?.id, mine[0])
  problem(t, await app.inject({ method: 'GET', url: '/api/v1/webhooks?cursor=forged', headers: authHeader(pair) }), 400)
})

t.test('GET /api/v1/webhooks/{id} → 304 with If-None-Match, 403 for another user, 404 unknown; an admin may read it', async (t) => {
  const { pair } = await owner()
  const { webhook, etag } = await created(pair)
  const url = `/api/v1/webhooks/${webhook.id}`
  const notModified = await app.inject({ method: 'GET', url, headers: { ...authHeader(pair), 'if-none-match': etag } })
  t.equal(notModified.statusCode, 304)
  t.equal(notModified.body, '')
  problem(t, await app.inject({ method: 'GET', url, headers: authHeader((await owner()).pair) }), 403)
  problem(t, await app.inject({ method: 'GET', url: '/api/v1/webhooks/0196f1c2-7a8b-7cde-8f01-23456789abcd', headers: authHeader(pair) }), 404)
  problem(t, await app.inject({ method: 'GET', url: '/api/v1/webhooks/nope', headers: authHeader(pair) }), 400)
  t.equal((await app.inject({ method: 'GET', url, headers: authHeader(admin) })).statusCode, 200)
})

t.test('PATCH /api/v1/webhooks/{id} → merge patch; If-Match 412; turning it on clears the reason', async (t) => {
  const { user, pair } = await owner()
  const { webhook, etag } = await created(pair, { description: 'old' })
  const url = `/api/v1/webhooks/${webhook.id}`
  const patch = (payload: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'PATCH', url, headers: { ...authHeader(pair), 'content-type': 'application/merge-patch+json', ...headers }, payload: JSON.stringify(payload) })
  const changed = await patch({ description: null, topics: [`user:${user.id}`], active: false }, { 'if-match': etag })
  t.equal(changed.statusCode, 200, changed.body)
  t.match(changed.json(), { description: null, topics: [`user:${user.id}`], active: false, url: webhook.url, version: 2 })
  t.equal(changed.headers.etag, `"${webhook.id}.2"`)
  problem(t, await patch({ active: true }, { 'if-match': etag }), 412)
  await app.db.update(webhooks).set({ disabledReason: 'Disabled after 5 deliveries in a row failed', failures: 5 }).where(eq(webhooks.id, webhook.id))
  const revived = await patch({ active: true })
  t.match(revived.json(), { active: true, disabledReason: null, version: 3 })
  const [row] = await app.db.select().from(webhooks).where(eq(webhooks.id, webhook.id))
  t.equal(row?.failures, 0)
  problem(t, await patch({ url: 'ftp://a.test/' }), 400, '/url')
  problem(t, await patch({ topics: ['user:0196f1c2-7a8b-7cde-8f01-23456789abcd'] }), 400, '/topics/0')
  problem(t, await patch({ secret: 'x' }), 400, '/secret')
  problem(t, await app.inject({ method: 'PATCH', url, headers: authHeader((await owner()).pair), payload: { active: true } }), 403)
  problem(t, await app.inject({ method: 'PATCH', url, payload: { active: true } }), 401)
  problem(t, await app.inject({ method: 'PATCH', url: '/api/v1/webhooks/0196f1c2-7a8b-7cde-8f01-23456789abcd', headers: authHeader(pair), payload: {} }), 404)
})

t.test('POST /api/v1/webhooks/{id}/secret → a new secret, once; the version goes up; 403 for another user', async (t) => {
  const { pair } = await owner()
  const { webhook, etag } = await created(pair)
  const url = `/api/v1/webhooks/${webhook.id}/secret`
  const rotated = await app.inject({ method: 'POST', url, headers: { ...authHeader(pair), 'if-match': etag } })
  t.equal(rotated.statusCode, 200, rotated.body)
  const body = rotated.json<Webhook>()
  t.match(body.secret, /^whsec_/)
  t.not(body.secret, webhook.secret)
  t.equal(body.version, 2)
  problem(t, await app.inject({ method: 'POST', url, headers: { ...authHeader(pair), 'if-match': etag } }), 412)
  problem(t, await app.inject({ method: 'POST', url, headers: authHeader((await owner()).pair) }), 403)
  problem(t, await app.inject({ method: 'POST', url, headers: authHeader(pair), payload: { secret: 'mine' } }), 415)
})

t.test('DELETE /api/v1/webhooks/{id} → 204 and its deliveries go with it; 403, 404, 412', async (t) => {
  const { pair } = await owner()
  const { webhook, etag } = await created(pair)
  const url = `/api/v1/webhooks/${webhook.id}`
  await app.db.insert(webhookDeliveries).values({ id: '0196f1c2-7a8b-7cde-8f01-000000000001', webhookId: webhook.id, eventId: 1, event: 'item.created', payload: '{}', attempt: 1, outcome: 'delivered', statusCode: 200, durationMs: 3 })
  problem(t, await app.inject({ method: 'DELETE', url, headers: authHeader((await owner()).pair) }), 403)
  problem(t, await app.inject({ method: 'DELETE', url, headers: { ...authHeader(pair), 'if-match': '"stale"' } }), 412)
  t.equal((await app.inject({ method: 'DELETE', url, headers: { ...authHeader(pair), 'if-match': etag } })).statusCode, 204)
  problem(t, await app.inject({ method: 'DELETE', url, headers: authHeader(pair) }), 404)
  t.equal((await app.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, webhook.id))).length, 0)
})

t.test('GET …/deliveries and POST …/retry → 403 for another user, 404 unknown delivery, 409 when inactive', async (t) => {
  const { pair } = await owner()
  const { webhook } = await created(pair)
  const base = `/api/v1/webhooks/${webhook.id}/deliveries`
  const deliveryId = '0196f1c2-7a8b-7cde-8f01-000000000002'
  await app.db.insert(webhookDeliveries).values({ id: deliveryId, webhookId: webhook.id, eventId: 7, event: 'item.created', payload: '{}', attempt: 1, outcome: 'failed', statusCode: 500, durationMs: 12 })
  const listed = await app.inject({ method: 'GET', url: base, headers: authHeader(pair) })
  t.match(listed.json(), { data: [{ id: deliveryId, webhookId: webhook.id, eventId: '7', event: 'item.created', attempt: 1, outcome: 'failed', statusCode: 500, durationMs: 12, error: null }], nextCursor: null })
  t.notOk('payload' in (listed.json<{ data: object[] }>().data[0] ?? {}))
  const stranger = (await owner()).pair
  problem(t, await app.inject({ method: 'GET', url: base, headers: authHeader(stranger) }), 403)
  problem(t, await app.inject({ method: 'POST', url: `${base}/${deliveryId}/retry`, headers: authHeader(stranger) }), 403)
  problem(t, await app.inject({ method: 'POST', url: `${base}/0196f1c2-7a8b-7cde-8f01-000000000003/retry`, headers: authHeader(pair) }), 404)
  await app.db.update(webhooks).set({ active: false }).where(eq(webhooks.id, webhook.id))
  problem(t, await app.inject({ method: 'POST', url: `${base}/${deliveryId}/retry`, headers: authHeader(pair) }), 409)
})

t.test('the webhooks scope is declared by its resource: asked for, granted, and listed in the OAuth2 scheme', async (t) => {
  const user = await signUp(app)
  t.equal((await login(app, user.email, undefined, 'webhooks')).scope, 'webhooks')
  const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<{ components: { securitySchemes: { OAuth2PasswordBearer: { flows: { password: { scopes: Record<string, string> } } } } }, tags: Array<{ name: string }> }>()
  t.same(Object.keys(document.components.securitySchemes.OAuth2PasswordBearer.flows.password.scopes), ['profile', 'items:write', 'webhooks', 'admin'])
  t.ok(document.tags.some((tag) => tag.name === 'webhooks'))
})

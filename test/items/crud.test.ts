import { randomUUID } from 'node:crypto'
import { eq, sql } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { files, items, rfc3339 } from '../../src/db/schema.js'
import { findItemById, insertItem } from '../../src/items/repository.js'
import { authHeader, build, login, signUp } from '../helper.js'

const ROOT = { FIRST_SUPERUSER_EMAIL: 'root@example.com', FIRST_SUPERUSER_PASSWORD: 'root-password-123' }
const app = await build(t, { AUTH_RATE_LIMIT_PER_MINUTE: '1000', ...ROOT })
const admin = authHeader(await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD, 'admin'))
const owner = await signUp(app)
const ownerAuth = authHeader(await login(app, owner.email))
const otherAuth = authHeader(await login(app, (await signUp(app)).email))
const profileOnly = authHeader(await login(app, owner.email, undefined, 'profile'))

type Response = Awaited<ReturnType<typeof app.inject>>
interface Item { id: string, ownerId: string, name: string, description: string | null, price: number, tags: string[], imageUrl: string | null, version: number, createdAt: string, updatedAt: string }

const url = (id: string) => `/api/v1/items/${id}`
const post = (payload: unknown, headers: Record<string, string> = ownerAuth) =>
  app.inject({ method: 'POST', url: '/api/v1/items', headers, payload: payload as Record<string, unknown> })
const send = (method: 'PUT' | 'PATCH' | 'DELETE', id: string, payload?: unknown, headers: Record<string, string> = ownerAuth) =>
  app.inject({ method, url: url(id), headers, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) })
const raw = (method: 'POST' | 'PUT' | 'PATCH', path: string, body: string, contentType: string, headers: Record<string, string> = ownerAuth) =>
  app.inject({ method, url: path, headers: { ...headers, 'content-type': contentType }, payload: body })

async function created (payload: Record<string, unknown> = { name: 'Walnut desk', price: 19.99 }): Promise<Item> {
  const res = await post(payload)
  if (res.statusCode !== 201) throw new Error(`${res.statusCode} ${res.body}`)
  return res.json<Item>()
}

const etagOf = (item: Pick<Item, 'id' | 'version'>) => `"${item.id}.${item.version}"`

async function row (id: string) {
  const [found] = await app.db.select().from(items).where(eq(items.id, id))
  return found
}

function problem (t: Test, res: Response, status: number, paths?: string[]) {
  t.equal(res.statusCode, status, res.body)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  if (paths !== undefined) t.same((res.json<{ errors?: Array<{ path: string }> }>().errors ?? []).map((error) => error.path).sort(), [...paths].sort())
}

t.test('POST /api/v1/items → 201 Item with Location and ETag, owned by the caller, stored exactly', async (t) => {
  const res = await post({ name: 'Walnut desk', description: 'Solid walnut', price: 19.99, tags: ['furniture', 'walnut'] })
  t.equal(res.statusCode, 201)
  const item = res.json<Item>()
  t.same(Object.keys(item).sort(), ['createdAt', 'description', 'id', 'imageUrl', 'name', 'ownerId', 'price', 'tags', 'updatedAt', 'version'])
  t.match(item, { ownerId: owner.id, name: 'Walnut desk', description: 'Solid walnut', price: 19.99, tags: ['furniture', 'walnut'], imageUrl: null, version: 1 })
  t.equal(res.headers.location, url(item.id))
  t.equal(res.headers.etag, etagOf(item))
  const stored = await row(item.id)
  t.equal(stored?.price, '19.99')
  t.equal(stored?.ownerId, owner.id)
  t.same(stored?.tags, ['furniture', 'walnut'])
})

t.test('POST /api/v1/items → description and tags default to null and []', async (t) => {
  const item = await created({ name: 'Plain', price: 0 })
  t.equal(item.description, null)
  t.same(item.tags, [])
  t.equal(item.price, 0)
})

t.test('POST /api/v1/items → prices round-trip exactly', async (t) => {
  for (const price of [0.07, 1.15, 19.99, 0.1, 1_000_000_000, 999_999_999.99]) {
    const item = await created({ name: 'Priced', price })
    t.equal(item.price, price, `${price} in the response`)
    t.equal((await app.inject({ url: url(item.id) })).json().price, price, `${price} read back`)
  }
  t.equal((await row((await created({ name: 'Priced', price: 1.15 })).id))?.price, '1.15')
})

t.test('POST /api/v1/items → 400 listing every failing field; no JSON coercion', async (t) => {
  problem(t, await post({ name: 'x', price: '5' }), 400, ['/price'])
  problem(t, await post({ name: 'x', price: 19.991 }), 400, ['/price'])
  // Within a millionth of a cent, yet not 2 decimals: refused rather than rounded when stored.
  const close = await post({ name: 'x', price: 0.0100000001 })
  problem(t, close, 400, ['/price'])
  t.match(close.json(), { errors: [{ in: 'body', path: '/price', message: 'must have at most 2 decimals' }] })
  problem(t, await post({ name: 'x', price: 1_000_000_000.01 }), 400, ['/price'])
  problem(t, await post({ name: 'x', price: -1 }), 400, ['/price'])
  problem(t, await post({ name: 123, price: null }), 400, ['/name', '/price'])
  problem(t, await post({ name: '', price: 1, tags: ['a', 'a'] }), 400, ['/name', '/tags'])
  problem(t, await post({ name: 'x'.repeat(201), price: 1, description: 'd'.repeat(5001) }), 400, ['/description', '/name'])
  problem(t, await post({ name: 'x', price: 1, tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }), 400, ['/tags'])
  problem(t, await post({ name: 'x', price: 1, ownerId: owner.id }), 400, ['/ownerId'])
  problem(t, await post({ price: 1 }), 400, ['/name'])
  problem(t, await post({ name: 'x', price: true }), 400, ['/price'])
  t.equal((await post({ name: '😀'.repeat(200), price: 1 })).statusCode, 201, '200 code points')
})

t.test('POST /api/v1/items → 401 without a token, 403 without items:write, 415 for another media type', async (t) => {
  const anonymous = await post({ name: 'x', price: 1 }, {})
  problem(t, anonymous, 401)
  t.match(anonymous.headers['www-authenticate'], /^Bearer/)
  const scoped = await post({ name: 'x', price: 1 }, profileOnly)
  problem(t, scoped, 403)
  t.match(scoped.headers['www-authenticate'], /insufficient_scope/)
  problem(t, await raw('POST', '/api/v1/items', '{"name":"x","price":1}', 'application/merge-patch+json'), 415)
  problem(t, await raw('POST', '/api/v1/items', 'name=x', 'text/plain'), 415)
  problem(t, await raw('POST', '/api/v1/items', '{"name":', 'application/json'), 400)
})

t.test('GET /api/v1/items/{id} → the item with its ETag, publicly', async (t) => {
  const item = await created()
  const res = await app.inject({ url: url(item.id) })
  t.equal(res.statusCode, 200)
  t.same(res.json(), item)
  t.equal(res.headers.etag, etagOf(item))
})

t.test('item timestamps read as RFC 3339 with milliseconds, also by a session in another time zone', async (t) => {
  const item = await created()
  t.match(item.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  const elsewhere = await app.db.transaction(async (tx) => {
    await tx.execute(sql`set local time zone 'Asia/Kolkata'`)
    return await findItemById(tx, item.id)
  })
  t.equal(elsewhere?.createdAt, item.createdAt)
  const texts: Record<string, string> = {
    '2026-12-02 18:33:02.232+00': '2026-12-02T18:33:02.232Z',
    '2026-12-02 18:33:02.2+00': '2026-12-02T18:33:02.200Z',
    '2026-12-02 18:33:02+00': '2026-12-02T18:33:02.000Z',
    '2026-12-03 00:03:02.232+05:30': '2026-12-02T18:33:02.232Z'
  }
  for (const [text, iso] of Object.entries(texts)) t.equal(rfc3339(text), iso, text)
})

t.test('GET /api/v1/items/{id} → 404 for an unknown id, 400 for a malformed one', async (t) => {
  problem(t, await app.inject({ url: url(randomUUID()) }), 404)
  problem(t, await app.inject({ url: url('not-a-uuid') }), 400, ['/id'])
})

t.test('GET /api/v1/items/{id} → 304 for If-None-Match naming the current version, weakly or in a list, and for *', async (t) => {
  const item = await created()
  const etag = etagOf(item)
  for (const header of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
    const res = await app.inject({ url: url(item.id), headers: { 'if-none-match': header } })
    t.equal(res.statusCode, 304, header)
    t.equal(res.body, '', 'no body')
    t.equal(res.headers.etag, etag)
  }
  for (const header of ['"other"', `"${item.id}.2"`, 'garbage']) {
    t.equal((await app.inject({ url: url(item.id), headers: { 'if-none-match': header } })).statusCode, 200, header)
  }
  problem(t, await app.inject({ url: url(item.id), headers: { 'if-none-match': 'x'.repeat(2001) } }), 400)
})

t.test('PUT /api/v1/items/{id} → 200 full replace: absent fields cleared, version and updatedAt advance in the row', async (t) => {
  const item = await created({ name: 'Old', description: 'old text', price: 5, tags: ['a'] })
  const res = await send('PUT', item.id, { name: 'New', price: 1.15 })
  t.equal(res.statusCode, 200)
  const replaced = res.json<Item>()
  t.match(replaced, { id: item.id, ownerId: owner.id, name: 'New', description: null, price: 1.15, tags: [], version: 2, createdAt: item.createdAt })
  t.ok(replaced.updatedAt >= item.updatedAt)
  t.equal(res.headers.etag, etagOf(replaced))
  const stored = await row(item.id)
  t.match(stored, { name: 'New', description: null, price: '1.15', tags: [], version: 2 })
  problem(t, await send('PUT', item.id, { name: 'New' }), 400, ['/price'])
  problem(t, await send('PUT', item.id, { name: 'New', price: 1, version: 7 }), 400, ['/version'])
})

t.test('PATCH /api/v1/items/{id} → merge patch semantics with application/json and application/merge-patch+json', async (t) => {
  for (const contentType of ['application/json', 'application/merge-patch+json', 'application/merge-patch+json; charset=utf-8']) {
    const item = await created({ name: 'Lamp', description: 'Bright', price: 10, tags: ['light'] })
    const patch = (body: unknown) => raw('PATCH', url(item.id), JSON.stringify(body), contentType)

    const price = await patch({ price: 12.5 })
    t.equal(price.statusCode, 200, contentType)
    t.match(price.json(), { name: 'Lamp', description: 'Bright', price: 12.5, tags: ['light'], version: 2 }, 'absent fields are kept')

    const cleared = await patch({ description: null })
    t.match(cleared.json(), { name: 'Lamp', description: null, price: 12.5, tags: ['light'], version: 3 }, 'null clears description')

    const noTags = await patch({ tags: null, name: 'Desk lamp' })
    t.match(noTags.json(), { name: 'Desk lamp', description: null, tags: [], version: 4 }, 'null tags clears them')

    const empty = await patch({})
    t.match(empty.json(), { name: 'Desk lamp', version: 5 }, 'an empty patch is still a write')
    t.equal(empty.headers.etag, `"${item.id}.5"`)

    problem(t, await patch({ name: null, price: null }), 400, ['/name', '/price'])
    problem(t, await patch({ price: '12' }), 400, ['/price'])
    problem(t, await patch({ owner: 'me' }), 400, ['/owner'])
    t.match(await row(item.id), { name: 'Desk lamp', description: null, tags: [], price: '12.50', version: 5 })
  }
})

t.test('PATCH /api/v1/items/{id} → 415 for another media type, 400 for malformed JSON', async (t) => {
  const item = await created()
  problem(t, await raw('PATCH', url(item.id), 'price=1', 'application/x-www-form-urlencoded'), 415)
  problem(t, await raw('PATCH', url(item.id), 'price: 1', 'text/plain'), 415)
  problem(t, await raw('PATCH', url(item.id), '{"price":', 'application/merge-patch+json'), 400)
  problem(t, await raw('PUT', url(item.id), '{"name":"x","price":1}', 'application/merge-patch+json'), 415)
  t.equal((await row(item.id))?.version, 1)
})

t.test('PUT, PATCH, DELETE /api/v1/items/{id} → 401 without a token, 403 for another user or without items:write, 404 unknown, 400 malformed', async (t) => {
  const item = await created()
  const calls = {
    PUT: { name: 'Taken', price: 1 },
    PATCH: { name: 'Taken' },
    DELETE: undefined
  } as const
  for (const [method, body] of Object.entries(calls) as Array<[keyof typeof calls, unknown]>) {
    problem(t, await send(method, item.id, body, {}), 401)
    const other = await send(method, item.id, body, otherAuth)
    problem(t, other, 403)
    t.match(other.json().detail, /another user/)
    problem(t, await send(method, item.id, body, profileOnly), 403)
    problem(t, await send(method, randomUUID(), body), 404)
    problem(t, await send(method, 'not-a-uuid', body), 400, ['/id'])
  }
  t.match(await row(item.id), { name: 'Walnut desk', version: 1 }, 'unchanged')
})

t.test('PUT, PATCH, DELETE /api/v1/items/{id} → an admin may change anyone\'s item; the owner stays', async (t) => {
  const item = await created()
  const replaced = await send('PUT', item.id, { name: 'By admin', price: 2 }, admin)
  t.equal(replaced.statusCode, 200)
  t.equal(replaced.json().ownerId, owner.id)
  const patched = await send('PATCH', item.id, { price: 3 }, admin)
  t.match(patched.json(), { name: 'By admin', price: 3, version: 3, ownerId: owner.id })
  t.equal((await send('DELETE', item.id, undefined, admin)).statusCode, 204)
  t.equal(await row(item.id), undefined)
})

t.test('PATCH /api/v1/items/{id} → 412 when If-Match does not match', async (t) => {
  const item = await created()
  for (const header of ['"stale"', `"${item.id}.2"`, `W/${etagOf(item)}`]) {
    const res = await app.inject({ method: 'PATCH', url: url(item.id), headers: { ...ownerAuth, 'if-match': header }, payload: { price: 1 } })
    problem(t, res, 412)
    t.equal(res.json().type, 'urn:catalog-api:problem:precondition-failed')
  }
  t.equal((await row(item.id))?.version, 1, 'nothing written')
})

t.test('PUT, PATCH, DELETE /api/v1/items/{id} → If-Match: the current ETag, a list holding it, or * proceed; a stale one is 412', async (t) => {
  const item = await created()
  const withIfMatch = (method: 'PUT' | 'PATCH' | 'DELETE', ifMatch: string, payload?: Record<string, unknown>) =>
    app.inject({ method, url: url(item.id), headers: { ...ownerAuth, 'if-match': ifMatch }, ...(payload === undefined ? {} : { payload }) })

  const first = await withIfMatch('PUT', etagOf(item), { name: 'v2', price: 2 })
  t.equal(first.statusCode, 200)
  const stale = await withIfMatch('PUT', etagOf(item), { name: 'lost update', price: 9 })
  problem(t, stale, 412)
  const listed = await withIfMatch('PATCH', `"nope", ${first.headers.etag as string}`, { price: 3 })
  t.equal(listed.statusCode, 200)
  t.equal((await withIfMatch('PATCH', '*', { price: 4 })).statusCode, 200)
  problem(t, await withIfMatch('DELETE', etagOf(item)), 412)
  t.match(await row(item.id), { name: 'v2', price: '4.00', version: 4 })
  t.equal((await withIfMatch('DELETE', '"x", "y"')).statusCode, 412)
  t.equal((await withIfMatch('DELETE', `"${item.id}.4"`)).statusCode, 204)
  problem(t, await withIfMatch('DELETE', '*'), 404, undefined)
})

t.test('PUT /api/v1/items/{id} → of two writers holding the same ETag, one wins and the other gets 412', async (t) => {
  const item = await created()
  const write = (name: string) =>
    app.inject({ method: 'PUT', url: url(item.id), headers: { ...ownerAuth, 'if-match': etagOf(item) }, payload: { name, price: 1 } })
  const results = await Promise.all([write('first'), write('second')])
  t.same(results.map((res) => res.statusCode).sort(), [200, 412])
  t.equal((await row(item.id))?.version, 2)
})

t.test('PATCH /api/v1/items/{id} → concurrent patches without If-Match all apply, each on the latest version', async (t) => {
  const item = await created()
  const results = await Promise.all(Array.from({ length: 5 }, (_, i) => send('PATCH', item.id, { description: `writer ${i}` })))
  t.same(results.map((res) => res.statusCode), [200, 200, 200, 200, 200])
  t.same(results.map((res) => res.json().version).sort(), [2, 3, 4, 5, 6])
  t.equal((await row(item.id))?.version, 6)
})

t.test('DELETE /api/v1/items/{id} → 204 without a body; the item and its image file are gone', async (t) => {
  const item = await created()
  const fileId = randomUUID()
  await app.db.insert(files).values({ id: fileId, ownerId: owner.id, contentType: 'image/png', size: 3, sha256: 'x', data: new Uint8Array([1, 2, 3]) })
  await app.db.update(items).set({ imageFileId: fileId }).where(eq(items.id, item.id))
  const keep = await insertItem(app.db, owner.id, { name: 'Keeps its file', price: 1 })
  const res = await send('DELETE', item.id)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal(await row(item.id), undefined)
  t.same(await app.db.select({ id: files.id }).from(files).where(eq(files.id, fileId)), [])
  t.ok(await row(keep.id), 'other items stay')
  problem(t, await app.inject({ url: url(item.id) }), 404)
  problem(t, await send('DELETE', item.id), 404)
})

t.test('OpenAPI documents the items operations, their headers and both PATCH media types', async (t) => {
  const document = (await app.inject({ url: '/openapi.json' })).json()
  const collection = document.paths['/api/v1/items']
  const single = document.paths['/api/v1/items/{id}']
  t.same(Object.keys(collection).sort(), ['get', 'post'])
  t.same(Object.keys(single).sort(), ['delete', 'get', 'patch', 'put'])
  t.same(Object.keys(single.patch.requestBody.content).sort(), ['application/json', 'application/merge-patch+json'])
  t.same(Object.keys(collection.post.responses['201'].headers).sort(),
    ['ETag', 'Idempotent-Replayed', 'Location', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'X-Request-Id'])
  t.ok(single.get.responses['304'], '304 documented')
  t.notOk(single.get.responses['304'].content, '304 has no body')
  t.ok(single.put.responses['412'] && single.patch.responses['412'] && single.delete.responses['412'], '412 documented')
  const headerNames = (operation: { parameters: Array<{ in: string, name: string }> }) =>
    operation.parameters.filter((parameter) => parameter.in === 'header').map((parameter) => parameter.name)
  t.same(headerNames(single.get), ['If-None-Match'])
  t.same(headerNames(single.patch), ['If-Match'])
  t.same(headerNames(collection.post), ['Idempotency-Key'])
  t.same(collection.post.security, [{ OAuth2PasswordBearer: ['items:write'] }, { BearerJWT: [] }])
  t.same(single.put.security, [{ OAuth2PasswordBearer: ['items:write'] }, { OAuth2PasswordBearer: ['admin'] }, { BearerJWT: [] }])
  t.same(collection.get.security, [])
  t.equal((await app.inject({ url: '/' })).json().links.items, '/api/v1/items')
})

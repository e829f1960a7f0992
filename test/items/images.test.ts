import { createHash } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { count, eq } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { files, items } from '../../src/db/schema.js'
import { insertItem, itemEtag, setItemImageAtVersion } from '../../src/items/repository.js'
import { authHeader, build, login, signUp, type TokenPair } from '../helper.js'
import { fileBody, fixture, IMAGES, multipartBody } from '../multipart.js'

const LIMIT = 1024
const ROOT = { FIRST_SUPERUSER_EMAIL: 'root@example.com', FIRST_SUPERUSER_PASSWORD: 'root-password-123' }
const app = await build(t, { UPLOAD_MAX_BYTES: String(LIMIT), AUTH_RATE_LIMIT_PER_MINUTE: '1000', ...ROOT })
const admin = await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD, 'admin')
const png = await fixture('pixel.png')

type Response = Awaited<ReturnType<typeof app.inject>>

async function owner () {
  const user = await signUp(app)
  const pair = await login(app, user.email)
  const item = await insertItem(app.db, user.id, { name: 'Walnut desk', price: 19.99 })
  return { user, pair, item }
}

const upload = async (id: string, pair: TokenPair | undefined, body: { payload: Buffer, headers: Record<string, string> }) =>
  await app.inject({ method: 'PUT', url: `/api/v1/items/${id}/image`, payload: body.payload, headers: { ...body.headers, ...(pair === undefined ? {} : authHeader(pair)) } })

const fileCount = async (ownerId?: string) => {
  const [row] = await app.db.select({ n: count() }).from(files).where(ownerId === undefined ? undefined : eq(files.ownerId, ownerId))
  return Number(row?.n)
}

function problem (t: Test, res: Response, status: number, paths?: string[]) {
  t.equal(res.statusCode, status, res.body)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.json().status, status)
  if (paths !== undefined) {
    const errors = res.json<{ errors?: Array<{ in: string, path: string }> }>().errors ?? []
    t.same(errors.map((error) => error.path).sort(), [...paths].sort(), 'the failing parts')
    t.ok(errors.every((error) => error.in === 'body'))
  }
}

for (const { file, type } of IMAGES) {
  t.test(`PUT /api/v1/items/{id}/image → 200 for a ${type} image, served back byte for byte`, async (t) => {
    const { pair, item } = await owner()
    const data = await fixture(file)
    // The declared type and name are ignored: the bytes decide.
    const res = await upload(item.id, pair, await fileBody(data, 'upload.bin', 'application/octet-stream'))
    t.equal(res.statusCode, 200, res.body)
    const body = res.json()
    t.equal(body.imageUrl, `/api/v1/items/${item.id}/image`)
    t.equal(body.version, item.version + 1, 'an image upload is a write to the item')
    t.equal(res.headers.etag, itemEtag(body))
    t.ok(body.updatedAt > item.updatedAt, 'updatedAt moves')

    const image = await app.inject({ url: body.imageUrl })
    t.equal(image.statusCode, 200)
    t.equal(image.headers['content-type'], type)
    t.same(image.rawPayload, data, 'byte for byte')
    t.equal(image.headers['content-length'], String(data.length))
    t.equal(image.headers.etag, `"${createHash('sha256').update(data).digest('hex')}"`)
    t.equal(image.headers['cache-control'], 'public, no-cache')
    t.equal(image.headers['x-content-type-options'], 'nosniff')
    t.equal(image.headers['cross-origin-resource-policy'], 'cross-origin', 'embeddable by pages on other sites')

    const [stored] = await app.db.select().from(files).where(eq(files.ownerId, item.ownerId))
    t.match(stored, { contentType: type, size: data.length, sha256: createHash('sha256').update(data).digest('hex') })
  })
}

t.test('GET /api/v1/items/{id}/image → 304 for a matching If-None-Match, 200 otherwise', async (t) => {
  const { pair, item } = await owner()
  await upload(item.id, pair, await fileBody(png))
  const url = `/api/v1/items/${item.id}/image`
  const etag = (await app.inject({ url })).headers.etag as string
  for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
    const res = await app.inject({ url, headers: { 'if-none-match': ifNoneMatch } })
    t.equal(res.statusCode, 304, ifNoneMatch)
    t.equal(res.body, '')
    t.equal(res.headers.etag, etag)
    t.equal(res.headers['cache-control'], 'public, no-cache')
  }
  const stale = await app.inject({ url, headers: { 'if-none-match': `"${'0'.repeat(64)}"` } })
  t.equal(stale.statusCode, 200)
  t.same(stale.rawPayload, png)
})

t.test('GET /api/v1/items/{id}/image → 404 without an image or item, 400 for a malformed id', async (t) => {
  const { item } = await owner()
  problem(t, await app.inject({ url: `/api/v1/items/${item.id}/image` }), 404)
  problem(t, await app.inject({ url: '/api/v1/items/0196f1c2-7a8b-7cde-8f01-23456789abcd/image' }), 404)
  const malformed = await app.inject({ url: '/api/v1/items/not-a-uuid/image' })
  problem(t, malformed, 400)
  t.equal(malformed.json().errors[0].in, 'path')
})

t.test('PUT /api/v1/items/{id}/image → replacing deletes the old file and bumps the version again', async (t) => {
  const { user, pair, item } = await owner()
  const first = await upload(item.id, pair, await fileBody(png))
  const second = await upload(item.id, pair, await fileBody(await fixture('pixel.gif')))
  t.equal(second.statusCode, 200)
  t.equal(second.json().version, first.json().version + 1)
  t.equal(await fileCount(user.id), 1, 'only the new file is kept')
  const [row] = await app.db.select({ imageFileId: items.imageFileId }).from(items).where(eq(items.id, item.id))
  const [stored] = await app.db.select({ id: files.id, contentType: files.contentType }).from(files).where(eq(files.ownerId, user.id))
  t.equal(row?.imageFileId, stored?.id)
  t.equal(stored?.contentType, 'image/gif')
  t.equal((await app.inject({ url: `/api/v1/items/${item.id}/image` })).headers['content-type'], 'image/gif')
})

t.test('PUT /api/v1/items/{id}/image → If-Match: a matching ETag or * is 200, another is 412 and stores nothing', async (t) => {
  const { pair, item } = await owner()
  const withIfMatch = async (ifMatch: string) => {
    const body = await fileBody(png)
    return await upload(item.id, pair, { ...body, headers: { ...body.headers, 'if-match': ifMatch } })
  }
  const matching = await withIfMatch(itemEtag(item))
  t.equal(matching.statusCode, 200, matching.body)
  t.equal(matching.json().version, item.version + 1)

  const filesBefore = await fileCount(item.ownerId)
  // Neither a weak tag of the current version nor the previous version's tag matches.
  const stale = await withIfMatch(`"nope", W/${matching.headers.etag as string}, ${itemEtag(item)}`)
  problem(t, stale, 412)
  t.equal(stale.json().type, 'urn:catalog-api:problem:precondition-failed')
  const [row] = await app.db.select({ version: items.version }).from(items).where(eq(items.id, item.id))
  t.equal(row?.version, item.version + 1, 'the version is unchanged')
  t.equal(await fileCount(item.ownerId), filesBefore, 'no new file')

  const any = await withIfMatch('*')
  t.equal(any.statusCode, 200, any.body)
  t.equal(any.json().version, item.version + 2)
})

t.test('setItemImageAtVersion → writes only at the version read, under the row lock: a stale one stores nothing', async (t) => {
  const { item } = await owner()
  t.equal(await setItemImageAtVersion(app.db, { ...item, version: item.version + 1 }, { contentType: 'image/png', data: png }), undefined)
  t.equal(await fileCount(item.ownerId), 0)
  const row = await setItemImageAtVersion(app.db, item, { contentType: 'image/png', data: png })
  t.equal(row?.version, item.version + 1)
  t.equal(await setItemImageAtVersion(app.db, item, { contentType: 'image/png', data: png }), undefined, 'the version it was read at is gone')
  t.equal(await fileCount(item.ownerId), 1)
})

t.test('PUT /api/v1/items/{id}/image → 415 for a text file named .png and declared image/png; nothing stored', async (t) => {
  const { user, pair, item } = await owner()
  const res = await upload(item.id, pair, await fileBody(Buffer.from('just some text, not an image\n'), 'pixel.png', 'image/png'))
  problem(t, res, 415)
  t.equal(await fileCount(user.id), 0)
  problem(t, await upload(item.id, pair, await fileBody(Buffer.alloc(0), 'empty.png', 'image/png')), 415, undefined)
})

t.test('PUT /api/v1/items/{id}/image → 413 past UPLOAD_MAX_BYTES; nothing stored, item unchanged', async (t) => {
  const { user, pair, item } = await owner()
  const justOver = Buffer.concat([png, Buffer.alloc(LIMIT + 1 - png.length)])
  problem(t, await upload(item.id, pair, await fileBody(justOver)), 413)
  const atLimit = Buffer.concat([png, Buffer.alloc(LIMIT - png.length)])
  t.equal((await upload(item.id, pair, await fileBody(atLimit))).statusCode, 200, 'exactly the limit is accepted')
  await app.db.delete(files).where(eq(files.ownerId, user.id))
  const farOver = await upload(item.id, pair, await fileBody(Buffer.concat([png, Buffer.alloc(8 * 1024 * 1024)])))
  problem(t, farOver, 413)
  t.equal(farOver.headers.connection, 'close', 'the rest of the body is not read')
  t.equal(await fileCount(user.id), 0)
  const [row] = await app.db.select({ version: items.version, imageFileId: items.imageFileId }).from(items).where(eq(items.id, item.id))
  t.same(row, { version: item.version + 1, imageFileId: null }, 'only the upload at the limit changed the item')
})

t.test('PUT /api/v1/items/{id}/image → 413 as soon as the limit is passed, before the body ends', async (t) => {
  const { pair, item } = await owner()
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const boundary = 'x-boundary-1234'
  const res = await new Promise<{ status: number | undefined, connection: string | undefined }>((resolve, reject) => {
    const req = httpRequest({
      port,
      host: '127.0.0.1',
      method: 'PUT',
      path: `/api/v1/items/${item.id}/image`,
      headers: { ...authHeader(pair), 'content-type': `multipart/form-data; boundary=${boundary}`, 'transfer-encoding': 'chunked' }
    }, (response) => {
      response.resume()
      resolve({ status: response.statusCode, connection: response.headers.connection })
      req.destroy()
    })
    req.on('error', (error) => { if (!req.destroyed) reject(error) })
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n`)
    // Twice the limit, then the request stays open: the answer must not wait for the rest.
    req.write(Buffer.concat([png, Buffer.alloc(2 * LIMIT)]))
  })
  t.equal(res.status, 413)
  t.equal(res.connection, 'close')
})

t.test('PUT /api/v1/items/{id}/image → 400 without a file part, with other parts, or with two files', async (t) => {
  const { user, pair, item } = await owner()
  problem(t, await upload(item.id, pair, await multipartBody([{ name: 'note', value: 'hello' }])), 400, ['/file', '/note'])
  problem(t, await upload(item.id, pair, await multipartBody([{ name: 'image', value: png, filename: 'pixel.png', type: 'image/png' }])), 400, ['/file', '/image'])
  problem(t, await upload(item.id, pair, await multipartBody([
    { name: 'file', value: png, filename: 'pixel.png', type: 'image/png' },
    { name: 'caption', value: 'hi' }
  ])), 400, ['/caption'])
  problem(t, await upload(item.id, pair, await multipartBody([
    { name: 'file', value: png, filename: 'a.png', type: 'image/png' },
    { name: 'file', value: png, filename: 'b.png', type: 'image/png' }
  ])), 400, ['/file'])
  const textField = await upload(item.id, pair, await multipartBody([{ name: 'file', value: 'not a file' }]))
  problem(t, textField, 400, ['/file'])
  t.equal(textField.json().errors[0].message, 'must be a file, not a text field')
  problem(t, await upload(item.id, pair, await multipartBody([])), 400, ['/file'])
  problem(t, await upload(item.id, pair, { payload: Buffer.from('--nope\r\ngarbage'), headers: { 'content-type': 'multipart/form-data; boundary=nope' } }), 400)
  t.equal(await fileCount(user.id), 0)
})

t.test('PUT /api/v1/items/{id}/image → 415 for a body that is not multipart/form-data', async (t) => {
  const { pair, item } = await owner()
  const url = `/api/v1/items/${item.id}/image`
  problem(t, await app.inject({ method: 'PUT', url, headers: authHeader(pair), payload: { file: 'x' } }), 415)
  problem(t, await app.inject({ method: 'PUT', url, headers: { ...authHeader(pair), 'content-type': 'image/png' }, payload: png }), 415)
  problem(t, await app.inject({ method: 'PUT', url, headers: authHeader(pair) }), 415)
})

t.test('multipart bodies are refused (415) on routes that do not document them', async (t) => {
  const body = await fileBody(png)
  problem(t, await app.inject({ method: 'POST', url: '/api/v1/users', payload: body.payload, headers: body.headers }), 415)
})

t.test('PUT /api/v1/items/{id}/image → 401, 403, 404, 400 before the body is read', async (t) => {
  const { item } = await owner()
  const other = await owner()
  const body = await fileBody(png)
  const noToken = await upload(item.id, undefined, body)
  problem(t, noToken, 401)
  t.match(noToken.headers['www-authenticate'], /^Bearer/)
  const profileOnly = await login(app, other.user.email, undefined, 'profile')
  const missingScope = await upload(other.item.id, profileOnly, body)
  problem(t, missingScope, 403)
  t.match(missingScope.headers['www-authenticate'], /insufficient_scope/)
  problem(t, await upload(item.id, other.pair, body), 403)
  problem(t, await upload('0196f1c2-7a8b-7cde-8f01-23456789abcd', other.pair, body), 404)
  const malformed = await upload('not-a-uuid', other.pair, body)
  problem(t, malformed, 400)
  t.same(malformed.json().errors.map((error: { in: string }) => error.in), ['path'])
  t.equal(await fileCount(item.ownerId), 0)
})

t.test('PUT /api/v1/items/{id}/image → 200 for an admin on another user\'s item; the file belongs to the item\'s owner', async (t) => {
  const { user, item } = await owner()
  const res = await upload(item.id, admin, await fileBody(png))
  t.equal(res.statusCode, 200, res.body)
  t.equal(await fileCount(user.id), 1)
})

t.test('image routes are documented with multipart/form-data bodies and image responses', async (t) => {
  const document = (await app.inject({ url: '/openapi.json' })).json()
  const put = document.paths['/api/v1/items/{id}/image'].put
  t.equal(put.operationId, 'uploadItemImage')
  t.same(Object.keys(put.requestBody.content), ['multipart/form-data'])
  t.same(document.components.schemas.ImageUpload.properties.file, { type: 'string', format: 'binary', description: document.components.schemas.ImageUpload.properties.file.description })
  t.same(document.components.schemas.ImageUpload.required, ['file'])
  for (const status of ['200', '400', '401', '403', '404', '413', '415']) t.ok(put.responses[status], `PUT documents ${status}`)
  const get = document.paths['/api/v1/items/{id}/image'].get
  t.equal(get.operationId, 'getItemImage')
  t.same(Object.keys(get.responses['200'].content), ['image/jpeg', 'image/png', 'image/webp', 'image/gif'])
  for (const status of ['304', '400', '404']) t.ok(get.responses[status], `GET documents ${status}`)
  t.same(get.security, [])
})

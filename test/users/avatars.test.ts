import { createHash } from 'node:crypto'
import { count, eq } from 'drizzle-orm'
import t from 'tap'
import { files, items } from '../../src/db/schema.js'
import { insertItem } from '../../src/items/repository.js'
import { authHeader, build, login, signUp, type TokenPair } from '../helper.js'
import { fileBody, fixture, multipartBody } from '../multipart.js'

const ROOT = { FIRST_SUPERUSER_EMAIL: 'root@example.com', FIRST_SUPERUSER_PASSWORD: 'root-password-123' }
const app = await build(t, { UPLOAD_MAX_BYTES: '1024', AUTH_RATE_LIMIT_PER_MINUTE: '1000', ...ROOT })
const png = await fixture('pixel.png')
const webp = await fixture('pixel.webp')

const putAvatar = async (pair: TokenPair | undefined, body: { payload: Buffer, headers: Record<string, string> }) =>
  await app.inject({ method: 'PUT', url: '/api/v1/users/me/avatar', payload: body.payload, headers: { ...body.headers, ...(pair === undefined ? {} : authHeader(pair)) } })

const fileCount = async (ownerId: string) => {
  const [row] = await app.db.select({ n: count() }).from(files).where(eq(files.ownerId, ownerId))
  return Number(row?.n)
}

async function newLogin (scope?: string) {
  const user = await signUp(app)
  return { user, pair: await login(app, user.email, undefined, scope) }
}

t.test('PUT /api/v1/users/me/avatar → 200 User with avatarUrl; GET /users/me shows it; the avatar is served back', async (t) => {
  const { user, pair } = await newLogin()
  const res = await putAvatar(pair, await fileBody(png, 'me.jpg', 'image/jpeg'))
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['avatarUrl', 'createdAt', 'email', 'fullName', 'id', 'isActive', 'isSuperuser', 'updatedAt'])
  t.equal(body.avatarUrl, `/api/v1/users/${user.id}/avatar`)
  t.equal((await app.inject({ url: '/api/v1/users/me', headers: authHeader(pair) })).json().avatarUrl, body.avatarUrl)

  const avatar = await app.inject({ url: body.avatarUrl })
  t.equal(avatar.statusCode, 200)
  t.equal(avatar.headers['content-type'], 'image/png', 'the sniffed type, not the declared one')
  t.same(avatar.rawPayload, png)
  t.equal(avatar.headers['content-length'], String(png.length))
  t.equal(avatar.headers.etag, `"${createHash('sha256').update(png).digest('hex')}"`)
  t.equal(avatar.headers['cache-control'], 'public, no-cache')
  t.equal(avatar.headers['x-content-type-options'], 'nosniff')

  const revalidated = await app.inject({ url: body.avatarUrl, headers: { 'if-none-match': avatar.headers.etag as string } })
  t.equal(revalidated.statusCode, 304)
  t.equal(revalidated.body, '')
})

t.test('PUT /api/v1/users/me/avatar → replacing deletes the old file', async (t) => {
  const { user, pair } = await newLogin()
  await putAvatar(pair, await fileBody(png))
  const res = await putAvatar(pair, await fileBody(webp))
  t.equal(res.statusCode, 200)
  t.equal(await fileCount(user.id), 1)
  const avatar = await app.inject({ url: `/api/v1/users/${user.id}/avatar` })
  t.equal(avatar.headers['content-type'], 'image/webp')
  t.same(avatar.rawPayload, webp)
})

t.test('PUT /api/v1/users/me/avatar → 401 without a token, 403 without the profile scope', async (t) => {
  const body = await fileBody(png)
  const noToken = await putAvatar(undefined, body)
  t.equal(noToken.statusCode, 401)
  t.match(noToken.headers['content-type'], /^application\/problem\+json/)
  const { user, pair } = await newLogin('items:write')
  const res = await putAvatar(pair, body)
  t.equal(res.statusCode, 403)
  t.match(res.headers['www-authenticate'], /insufficient_scope/)
  t.equal(await fileCount(user.id), 0)
})

t.test('PUT /api/v1/users/me/avatar → 400, 413, 415 like item images', async (t) => {
  const { user, pair } = await newLogin()
  const missing = await putAvatar(pair, await multipartBody([{ name: 'avatar', value: 'x' }]))
  t.equal(missing.statusCode, 400)
  t.same(missing.json().errors, [
    { in: 'body', path: '/avatar', message: 'is not a known part: send only file' },
    { in: 'body', path: '/file', message: 'is required' }
  ])
  t.equal((await putAvatar(pair, await fileBody(Buffer.concat([png, Buffer.alloc(2048)])))).statusCode, 413)
  t.equal((await putAvatar(pair, await fileBody(Buffer.from('%PDF-1.4\n'), 'me.png', 'image/png'))).statusCode, 415)
  t.equal((await app.inject({ method: 'PUT', url: '/api/v1/users/me/avatar', headers: authHeader(pair), payload: { file: 'x' } })).statusCode, 415)
  t.equal(await fileCount(user.id), 0)
  t.equal((await app.inject({ url: '/api/v1/users/me', headers: authHeader(pair) })).json().avatarUrl, null)
})

t.test('GET /api/v1/users/{id}/avatar → 404 without an avatar or user, 400 for a malformed id', async (t) => {
  const { user } = await newLogin()
  t.equal((await app.inject({ url: `/api/v1/users/${user.id}/avatar` })).statusCode, 404)
  const unknown = await app.inject({ url: '/api/v1/users/0196f1c2-7a8b-7cde-8f01-23456789abcd/avatar' })
  t.equal(unknown.statusCode, 404)
  t.match(unknown.headers['content-type'], /^application\/problem\+json/)
  t.equal((await app.inject({ url: '/api/v1/users/nope/avatar' })).statusCode, 400)
})

t.test('DELETE /api/v1/users/me → the user\'s files (avatar and item images) are deleted', async (t) => {
  const { user, pair } = await newLogin()
  await putAvatar(pair, await fileBody(png))
  const item = await insertItem(app.db, user.id, { name: 'Lamp', price: 5 })
  const image = await fileBody(webp)
  const uploaded = await app.inject({ method: 'PUT', url: `/api/v1/items/${item.id}/image`, payload: image.payload, headers: { ...image.headers, ...authHeader(pair) } })
  t.equal(uploaded.statusCode, 200)
  t.equal(await fileCount(user.id), 2)
  t.equal((await app.inject({ method: 'DELETE', url: '/api/v1/users/me', headers: authHeader(pair) })).statusCode, 204)
  t.equal(await fileCount(user.id), 0)
  t.same(await app.db.select().from(items).where(eq(items.ownerId, user.id)), [])
  t.equal((await app.inject({ url: `/api/v1/users/${user.id}/avatar` })).statusCode, 404)
})

t.test('DELETE /api/v1/users/{id} (admin) → the user\'s avatar file is deleted', async (t) => {
  const { user, pair } = await newLogin()
  await putAvatar(pair, await fileBody(png))
  const admin = await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD, 'admin')
  t.equal((await app.inject({ method: 'DELETE', url: `/api/v1/users/${user.id}`, headers: authHeader(admin) })).statusCode, 204)
  t.equal(await fileCount(user.id), 0)
})

t.test('avatar routes are documented', async (t) => {
  const document = (await app.inject({ url: '/openapi.json' })).json()
  const put = document.paths['/api/v1/users/me/avatar'].put
  t.equal(put.operationId, 'uploadAvatar')
  t.same(put.tags, ['users'])
  t.same(put.requestBody.content['multipart/form-data'].schema, { $ref: '#/components/schemas/ImageUpload' })
  for (const status of ['200', '400', '401', '403', '413', '415']) t.ok(put.responses[status], `PUT documents ${status}`)
  const get = document.paths['/api/v1/users/{id}/avatar'].get
  t.equal(get.operationId, 'getUserAvatar')
  t.same(get.security, [])
})

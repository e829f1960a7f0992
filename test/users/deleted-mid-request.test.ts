import { PassThrough } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { eq } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { files, items, jobs } from '../../src/db/schema.js'
import { fileBody, fixture } from '../multipart.js'
import { authHeader, build, login, signUp, type TokenPair } from '../helper.js'

const app = await build(t, { AUTH_RATE_LIMIT_PER_MINUTE: '1000' })

/**
 * Sends a request whose body arrives in two halves, and deletes its user in between: the request was
 * authenticated while the user existed, and writes once the user is gone.
 */
async function deletedMidRequest (t: Test, request: (tokens: TokenPair) => { method: 'POST' | 'PUT', url: string, headers: Record<string, string>, payload: Buffer }) {
  const user = await signUp(app)
  const tokens = await login(app, user.email)
  const other = await login(app, user.email)
  const { method, url, headers, payload } = request(tokens)
  const body = new PassThrough()
  const half = Math.floor(payload.length / 2)
  body.write(payload.subarray(0, half))
  const answer = app.inject({ method, url, headers: { ...headers, ...authHeader(tokens), 'content-length': String(payload.length) }, payload: body })
  // Long enough for the request to be authenticated and its handler to wait on the rest of the body.
  await sleep(200)
  t.equal((await app.inject({ method: 'DELETE', url: '/api/v1/users/me', headers: authHeader(other) })).statusCode, 204, 'the user is deleted meanwhile')
  body.end(payload.subarray(half))
  const res = await answer
  t.ok([401, 404].includes(res.statusCode), `${method} ${url} answers ${res.statusCode}, as if the user were gone`, { body: res.body })
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  if (res.statusCode === 401) t.match(res.headers['www-authenticate'], /error="invalid_token"/)
  for (const table of [items, files, jobs]) t.same(await app.db.select().from(table).where(eq(table.ownerId, user.id)), [], 'nothing of the user is left')
}

t.test('POST /api/v1/items by a user deleted while the body was being sent → 401, not 500', async (t) => {
  await deletedMidRequest(t, () => ({
    method: 'POST',
    url: '/api/v1/items',
    headers: { 'content-type': 'application/json' },
    payload: Buffer.from(JSON.stringify({ name: 'half sent', price: 1, description: 'x'.repeat(900) }))
  }))
})

t.test('PUT /api/v1/users/me/avatar by a user deleted mid-upload → 401, not 500', async (t) => {
  const { payload, headers } = await fileBody(await fixture('pixel.png'), 'pixel.png', 'image/png')
  await deletedMidRequest(t, () => ({ method: 'PUT', url: '/api/v1/users/me/avatar', headers, payload }))
})

t.test('POST /api/v1/items/import by a user deleted mid-upload → 401, not 500', async (t) => {
  const csv = Buffer.from(`name,description,price,tags\n${Array.from({ length: 200 }, (_, i) => `row ${i},,1.50,a`).join('\n')}\n`)
  const { payload, headers } = await fileBody(csv, 'items.csv', 'text/csv')
  await deletedMidRequest(t, () => ({ method: 'POST', url: '/api/v1/items/import', headers, payload }))
})

import { eq } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { sessions, users } from '../../src/db/schema.js'
import { authHeader, build, login, signUp, TEST_PASSWORD, uniqueEmail, type TokenPair } from '../helper.js'

const ROOT = { FIRST_SUPERUSER_EMAIL: 'root@example.com', FIRST_SUPERUSER_PASSWORD: 'root-password-123' }
const app = await build(t, { AUTH_RATE_LIMIT_PER_MINUTE: '1000', ...ROOT })

type Response = Awaited<ReturnType<typeof app.inject>>

const create = (payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/api/v1/users', payload: payload as Record<string, unknown>, headers })
const me = (pair: TokenPair) => app.inject({ url: '/api/v1/users/me', headers: authHeader(pair) })
const patchMe = (pair: TokenPair, payload: unknown) =>
  app.inject({ method: 'PATCH', url: '/api/v1/users/me', headers: authHeader(pair), payload: payload as Record<string, unknown> })
const changePassword = (pair: TokenPair, payload: unknown) =>
  app.inject({ method: 'PUT', url: '/api/v1/users/me/password', headers: authHeader(pair), payload: payload as Record<string, unknown> })

/** A 400 problem listing exactly these fields of the body. */
function invalid (t: Test, res: Response, paths: string[]) {
  t.equal(res.statusCode, 400)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  const errors = res.json<{ errors?: Array<{ in: string, path: string }> }>().errors ?? []
  t.same(errors.map((error) => error.path).sort(), [...paths].sort(), 'the failing fields')
  t.ok(errors.every((error) => error.in === 'body'))
}

async function newLogin () {
  const user = await signUp(app)
  return { user, pair: await login(app, user.email) }
}

t.test('POST /api/v1/users → 201 User with Location, and an argon2id hash stored', async (t) => {
  const email = uniqueEmail('Ada')
  const res = await create({ email, password: TEST_PASSWORD, fullName: 'Ada Lovelace' })
  t.equal(res.statusCode, 201)
  const user = res.json()
  t.equal(res.headers.location, `/api/v1/users/${user.id}`)
  t.same(Object.keys(user).sort(), ['avatarUrl', 'createdAt', 'email', 'fullName', 'id', 'isActive', 'isSuperuser', 'updatedAt'])
  t.match(user, { email, fullName: 'Ada Lovelace', isActive: true, isSuperuser: false, avatarUrl: null })
  t.match(user.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a UUIDv7')
  t.equal(new Date(user.createdAt).toISOString(), user.createdAt)
  t.notMatch(res.body, /password/i)
  const [row] = await app.db.select().from(users).where(eq(users.id, user.id))
  t.match(row?.passwordHash, /^\$argon2id\$/)
  t.equal(row?.email, email, 'the case is kept')
  t.equal((await app.inject({ url: res.headers.location as string, headers: authHeader(await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD, 'admin')) })).json().id, user.id)
})

t.test('POST /api/v1/users → 201 without fullName, and with fullName null', async (t) => {
  const without = await create({ email: uniqueEmail(), password: TEST_PASSWORD })
  t.equal(without.statusCode, 201)
  t.equal(without.json().fullName, null)
  const withNull = await create({ email: uniqueEmail(), password: TEST_PASSWORD, fullName: null })
  t.equal(withNull.statusCode, 201)
  t.equal(withNull.json().fullName, null)
})

t.test('POST /api/v1/users → 409 for a duplicate email in another case', async (t) => {
  const user = await signUp(app)
  const res = await create({ email: user.email.toUpperCase(), password: TEST_PASSWORD })
  t.equal(res.statusCode, 409)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.json().type, 'urn:catalog-api:problem:email-taken')
  const rows = await app.db.select({ id: users.id }).from(users).where(eq(users.email, user.email.toUpperCase()))
  t.equal(rows.length, 0)
})

t.test('POST /api/v1/users → 400 listing every failing field, types not coerced', async (t) => {
  invalid(t, await create({ email: 123, password: 12345678 }), ['/email', '/password'])
  invalid(t, await create({ email: 'not-an-email', password: 'short' }), ['/email', '/password'])
  invalid(t, await create({}), ['/email', '/password'])
  invalid(t, await create({ email: uniqueEmail(), password: 'x'.repeat(129) }), ['/password'])
  invalid(t, await create({ email: uniqueEmail(), password: '😀😀😀😀' }), ['/password'])
  invalid(t, await create({ email: uniqueEmail(), password: TEST_PASSWORD, fullName: 42 }), ['/fullName'])
  invalid(t, await create({ email: uniqueEmail(), password: TEST_PASSWORD, fullName: '' }), ['/fullName'])
})

t.test('POST /api/v1/users → 201 for a password of 8 code points that is 16 UTF-16 units', async (t) => {
  const res = await create({ email: uniqueEmail(), password: '😀😀😀😀😀😀😀😀' })
  t.equal(res.statusCode, 201)
})

t.test('POST /api/v1/users → 400 for unknown fields (no self-made superusers)', async (t) => {
  invalid(t, await create({ email: uniqueEmail(), password: TEST_PASSWORD, isSuperuser: true }), ['/isSuperuser'])
})

t.test('POST /api/v1/users → 400 for a NUL byte in a string', async (t) => {
  const res = await create({ email: uniqueEmail(), password: TEST_PASSWORD, fullName: 'Ada\u0000' })
  t.equal(res.statusCode, 400)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.json().errors[0].path, '/fullName')
})

t.test('GET /api/v1/users/me → 200 User with Cache-Control: private, no-store', async (t) => {
  const { user, pair } = await newLogin()
  const res = await me(pair)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'private, no-store')
  t.same(res.json(), user)
})

t.test('GET /api/v1/users/me → 401 without a token', async (t) => {
  const res = await app.inject({ url: '/api/v1/users/me' })
  t.equal(res.statusCode, 401)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
})

t.test('PATCH /api/v1/users/me → 200 with the changed name and email', async (t) => {
  const { user, pair } = await newLogin()
  const email = uniqueEmail('renamed')
  const res = await patchMe(pair, { fullName: 'Ada King', email })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { id: user.id, fullName: 'Ada King', email })
  const [row] = await app.db.select().from(users).where(eq(users.id, user.id))
  t.equal(row?.email, email)
  t.equal((await patchMe(pair, { fullName: null })).json().fullName, null, 'null clears the name')
  t.equal((await patchMe(pair, {})).statusCode, 200, 'an empty change is fine')
  t.equal((await patchMe(pair, { email: email.toUpperCase() })).statusCode, 200, 'your own email in another case is no conflict')
})

t.test('PATCH /api/v1/users/me → 409 for an email another user has, in another case', async (t) => {
  const other = await signUp(app)
  const { pair } = await newLogin()
  const res = await patchMe(pair, { email: other.email.toUpperCase() })
  t.equal(res.statusCode, 409)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
})

t.test('PATCH /api/v1/users/me → 400 for unknown fields, wrong types and NUL bytes', async (t) => {
  const { pair } = await newLogin()
  invalid(t, await patchMe(pair, { isSuperuser: true, isActive: false }), ['/isActive', '/isSuperuser'])
  invalid(t, await patchMe(pair, { email: 123, fullName: 5 }), ['/email', '/fullName'])
  t.equal((await patchMe(pair, { fullName: 'a\u0000b' })).statusCode, 400)
  t.equal((await me(pair)).json().isSuperuser, false)
})

t.test('PATCH /api/v1/users/me → 401 without a token', async (t) => {
  t.equal((await app.inject({ method: 'PATCH', url: '/api/v1/users/me', payload: {} })).statusCode, 401)
})

t.test('PUT /api/v1/users/me/password → 204 and every login of the user ends, this one included', async (t) => {
  const { user, pair } = await newLogin()
  const other = await login(app, user.email)
  const res = await changePassword(pair, { currentPassword: TEST_PASSWORD, newPassword: 'a brand new password' })
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal((await me(pair)).statusCode, 401)
  t.equal((await me(other)).statusCode, 401)
  const refresh = await app.inject({ method: 'POST', url: '/api/v1/auth/token', payload: { grant_type: 'refresh_token', refresh_token: other.refresh_token } })
  t.equal(refresh.json().error, 'invalid_grant')
  const live = await app.db.select().from(sessions).where(eq(sessions.userId, user.id))
  t.ok(live.every((session) => session.revokedAt !== null))
  t.equal((await me(await login(app, user.email, 'a brand new password'))).statusCode, 200, 'the new password works')
  await t.rejects(login(app, user.email), 'the old one does not')
})

t.test('PUT /api/v1/users/me/password → 400 for a wrong currentPassword, and nothing changes', async (t) => {
  const { pair } = await newLogin()
  const res = await changePassword(pair, { currentPassword: 'not my password', newPassword: 'a brand new password' })
  t.equal(res.statusCode, 400)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.same(res.json().errors, [{ in: 'body', path: '/currentPassword', message: 'is incorrect' }])
  t.equal((await me(pair)).statusCode, 200, 'the login goes on')
})

t.test('PUT /api/v1/users/me/password → 400 for a new password too short, 401 without a token', async (t) => {
  const { pair } = await newLogin()
  invalid(t, await changePassword(pair, { currentPassword: TEST_PASSWORD, newPassword: 'short' }), ['/newPassword'])
  invalid(t, await changePassword(pair, { newPassword: 'long enough now' }), ['/currentPassword'])
  t.equal((await app.inject({ method: 'PUT', url: '/api/v1/users/me/password', payload: { currentPassword: TEST_PASSWORD, newPassword: 'long enough now' } })).statusCode, 401)
})

t.test('DELETE /api/v1/users/me → 204; the user, their logins and tokens are gone', async (t) => {
  const { user, pair } = await newLogin()
  const res = await app.inject({ method: 'DELETE', url: '/api/v1/users/me', headers: authHeader(pair) })
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal((await me(pair)).statusCode, 401)
  t.same(await app.db.select().from(users).where(eq(users.id, user.id)), [])
  t.same(await app.db.select().from(sessions).where(eq(sessions.userId, user.id)), [])
  const refresh = await app.inject({ method: 'POST', url: '/api/v1/auth/token', payload: { grant_type: 'refresh_token', refresh_token: pair.refresh_token } })
  t.equal(refresh.json().error, 'invalid_grant')
  await t.rejects(login(app, user.email))
})

t.test('DELETE /api/v1/users/me → 409 for the last active superuser', async (t) => {
  const root = await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD)
  const res = await app.inject({ method: 'DELETE', url: '/api/v1/users/me', headers: authHeader(root) })
  t.equal(res.statusCode, 409)
  t.equal(res.json().type, 'urn:catalog-api:problem:last-superuser')
  t.equal((await me(root)).statusCode, 200)
})

t.test('the routes of /api/v1/users/me → 403 for a token without profile', async (t) => {
  const user = await signUp(app)
  const pair = await login(app, user.email, TEST_PASSWORD, 'items:write')
  for (const [method, url] of [['GET', '/api/v1/users/me'], ['PATCH', '/api/v1/users/me'], ['PUT', '/api/v1/users/me/password'], ['DELETE', '/api/v1/users/me']] as const) {
    const res = await app.inject({ method, url, headers: authHeader(pair), payload: {} })
    t.equal(res.statusCode, 403, `${method} ${url}`)
    t.match(res.headers['www-authenticate'], /error="insufficient_scope", scope="profile"/)
  }
})

t.test('GET /api/v1/users/me → ETag; If-None-Match → 304; a change gives a new ETag', async (t) => {
  const { pair } = await newLogin()
  const first = await me(pair)
  const etag = String(first.headers.etag)
  t.match(etag, /^"[0-9a-f-]{36}\.[0-9]+"$/, 'a strong, quoted ETag')
  const unchanged = await app.inject({ url: '/api/v1/users/me', headers: { ...authHeader(pair), 'if-none-match': etag } })
  t.equal(unchanged.statusCode, 304)
  t.equal(unchanged.body, '')
  t.equal(unchanged.headers.etag, etag)
  t.equal((await app.inject({ url: '/api/v1/users/me', headers: { ...authHeader(pair), 'if-none-match': '"other"' } })).statusCode, 200)
  const patched = await patchMe(pair, { fullName: 'Someone Else' })
  t.equal(patched.statusCode, 200)
  t.equal(patched.headers['cache-control'], 'private, no-store')
  t.not(patched.headers.etag, etag, 'a write changes the ETag')
  const after = await app.inject({ url: '/api/v1/users/me', headers: { ...authHeader(pair), 'if-none-match': etag } })
  t.equal(after.statusCode, 200, 'the old ETag no longer matches')
  t.equal(after.headers.etag, patched.headers.etag)
})

t.test('GET /api/v1/users/{id} → ETag and 304 for an admin; POST /api/v1/users → ETag', async (t) => {
  const created = await create({ email: uniqueEmail(), password: TEST_PASSWORD })
  t.match(created.headers.etag, /^"[0-9a-f-]{36}\.[0-9]+"$/)
  const admin = await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD, 'admin')
  const url = `/api/v1/users/${created.json<{ id: string }>().id}`
  const res = await app.inject({ url, headers: authHeader(admin) })
  t.equal(res.headers.etag, created.headers.etag)
  t.equal((await app.inject({ url, headers: { ...authHeader(admin), 'if-none-match': String(res.headers.etag) } })).statusCode, 304)
})

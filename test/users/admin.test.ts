import { eq } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { refreshTokens, sessions, users } from '../../src/db/schema.js'
import { authHeader, build, login, signUp, TEST_PASSWORD, uniqueEmail } from '../helper.js'

const ROOT = { FIRST_SUPERUSER_EMAIL: 'root@example.com', FIRST_SUPERUSER_PASSWORD: 'root-password-123' }
const env = { AUTH_RATE_LIMIT_PER_MINUTE: '1000', ...ROOT }

async function setUp (t: Test, extra: Record<string, string> = {}) {
  const app = await build(t, { ...env, ...extra })
  const root = await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD, 'admin profile')
  const [rootRow] = await app.db.select({ id: users.id }).from(users).where(eq(users.email, ROOT.FIRST_SUPERUSER_EMAIL))
  return { app, root, rootId: rootRow?.id ?? '' }
}

const app = await build(t, env)
const root = await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD, 'admin profile')
const admin = authHeader(root)
const get = (id: string, headers: Record<string, string> = admin) => app.inject({ url: `/api/v1/users/${id}`, headers })
const patch = (id: string, payload: Record<string, unknown>, headers: Record<string, string> = admin) =>
  app.inject({ method: 'PATCH', url: `/api/v1/users/${id}`, headers, payload })
const remove = (id: string, headers: Record<string, string> = admin) => app.inject({ method: 'DELETE', url: `/api/v1/users/${id}`, headers })

t.test('GET /api/v1/users/{id} → 200 User for an admin', async (t) => {
  const user = await signUp(app, { fullName: 'Grace Hopper' })
  const res = await get(user.id)
  t.equal(res.statusCode, 200)
  t.same(res.json(), { ...user })
  t.notMatch(res.body, /password/i)
})

t.test('GET /api/v1/users/{id} → 404 for an unknown id, 400 for a malformed one', async (t) => {
  const missing = await get('0196f1c2-7a8b-7cde-8f01-23456789abcd')
  t.equal(missing.statusCode, 404)
  t.match(missing.headers['content-type'], /^application\/problem\+json/)
  const malformed = await get('not-a-uuid')
  t.equal(malformed.statusCode, 400)
  t.equal(malformed.json().errors[0].in, 'path')
  t.equal(malformed.json().errors[0].path, '/id')
})

t.test('GET /api/v1/users/{id} → 401 without a token, 403 without admin', async (t) => {
  const user = await signUp(app)
  t.equal((await get(user.id, {})).statusCode, 401)
  t.equal((await get(user.id, authHeader(await login(app, user.email)))).statusCode, 403)
})

t.test('PATCH /api/v1/users/{id} → 200; an admin sets fullName, email, isSuperuser and isActive', async (t) => {
  const user = await signUp(app)
  const email = uniqueEmail('changed')
  const res = await patch(user.id, { fullName: 'Changed', email, isSuperuser: true })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { id: user.id, fullName: 'Changed', email, isSuperuser: true, isActive: true })
  const [row] = await app.db.select().from(users).where(eq(users.id, user.id))
  t.match(row, { fullName: 'Changed', email, isSuperuser: true })
  t.equal((await patch(user.id, { isSuperuser: false })).json().isSuperuser, false)
})

t.test('PATCH /api/v1/users/{id} isActive=false → the user\'s tokens are 401 and their logins end', async (t) => {
  const user = await signUp(app)
  const pair = await login(app, user.email)
  t.equal((await app.inject({ url: '/api/v1/users/me', headers: authHeader(pair) })).statusCode, 200)
  const res = await patch(user.id, { isActive: false })
  t.equal(res.statusCode, 200)
  t.equal(res.json().isActive, false)
  t.equal((await app.inject({ url: '/api/v1/users/me', headers: authHeader(pair) })).statusCode, 401)
  const rows = await app.db.select().from(sessions).where(eq(sessions.userId, user.id))
  t.ok(rows.length > 0 && rows.every((session) => session.revokedAt !== null))
  t.equal((await patch(user.id, { isActive: true })).json().isActive, true)
  t.equal((await app.inject({ url: '/api/v1/users/me', headers: authHeader(pair) })).statusCode, 401, 'reactivating does not revive old logins')
  t.equal((await app.inject({ url: '/api/v1/users/me', headers: authHeader(await login(app, user.email)) })).statusCode, 200)
})

t.test('PATCH /api/v1/users/{id} → 409 for an email another user has, in another case', async (t) => {
  const [first, second] = [await signUp(app), await signUp(app)]
  const res = await patch(second.id, { email: first.email.toUpperCase() })
  t.equal(res.statusCode, 409)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
})

t.test('PATCH /api/v1/users/{id} → 404 for an unknown id; 400 for unknown fields and wrong types', async (t) => {
  t.equal((await patch('0196f1c2-7a8b-7cde-8f01-23456789abcd', { fullName: 'x' })).statusCode, 404)
  const user = await signUp(app)
  const res = await patch(user.id, { password: 'new password here', isActive: 'false' })
  t.equal(res.statusCode, 400)
  t.same(res.json().errors.map((error: { path: string }) => error.path).sort(), ['/isActive', '/password'])
})

t.test('PATCH /api/v1/users/{id} → 403 without admin', async (t) => {
  const user = await signUp(app)
  const own = await login(app, user.email)
  t.equal((await patch(user.id, { isSuperuser: true }, authHeader(own))).statusCode, 403)
  t.equal((await get(user.id)).json().isSuperuser, false)
})

t.test('DELETE /api/v1/users/{id} → 204; the user and their tokens are gone', async (t) => {
  const user = await signUp(app)
  const pair = await login(app, user.email)
  const res = await remove(user.id)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal((await app.inject({ url: '/api/v1/users/me', headers: authHeader(pair) })).statusCode, 401)
  t.same(await app.db.select().from(sessions).where(eq(sessions.userId, user.id)), [])
  const sid = JSON.parse(Buffer.from(pair.access_token.split('.')[1] ?? '', 'base64url').toString()).sid as string
  t.same(await app.db.select().from(refreshTokens).where(eq(refreshTokens.sessionId, sid)), [])
  t.equal((await remove(user.id)).statusCode, 404)
})

t.test('DELETE /api/v1/users/{id} → 403 without admin, 401 without a token', async (t) => {
  const user = await signUp(app)
  t.equal((await remove(user.id, authHeader(await login(app, user.email)))).statusCode, 403)
  t.equal((await remove(user.id, {})).statusCode, 401)
  t.equal((await get(user.id)).statusCode, 200)
})

t.test('the last active superuser cannot be deleted, deactivated or demoted (409)', async (t) => {
  const { app, root, rootId } = await setUp(t)
  const headers = authHeader(root)
  for (const res of [
    await app.inject({ method: 'DELETE', url: `/api/v1/users/${rootId}`, headers }),
    await app.inject({ method: 'PATCH', url: `/api/v1/users/${rootId}`, headers, payload: { isActive: false } }),
    await app.inject({ method: 'PATCH', url: `/api/v1/users/${rootId}`, headers, payload: { isSuperuser: false } }),
    await app.inject({ method: 'DELETE', url: '/api/v1/users/me', headers })
  ]) {
    t.equal(res.statusCode, 409)
    t.equal(res.json().type, 'urn:catalog-api:problem:last-superuser')
  }
  t.equal((await app.inject({ method: 'PATCH', url: `/api/v1/users/${rootId}`, headers, payload: { fullName: 'Root' } })).statusCode, 200, 'other changes are fine')

  // An inactive superuser does not count.
  const spare = await signUp(app)
  await app.inject({ method: 'PATCH', url: `/api/v1/users/${spare.id}`, headers, payload: { isSuperuser: true, isActive: false } })
  t.equal((await app.inject({ method: 'PATCH', url: `/api/v1/users/${rootId}`, headers, payload: { isSuperuser: false } })).statusCode, 409)

  // With another active superuser, the first may step down; then the other is the last.
  await app.inject({ method: 'PATCH', url: `/api/v1/users/${spare.id}`, headers, payload: { isActive: true } })
  t.equal((await app.inject({ method: 'PATCH', url: `/api/v1/users/${rootId}`, headers, payload: { isSuperuser: false } })).statusCode, 200)
  const spareAdmin = authHeader(await login(app, spare.email, TEST_PASSWORD, 'admin'))
  t.equal((await app.inject({ method: 'DELETE', url: `/api/v1/users/${spare.id}`, headers: spareAdmin })).statusCode, 409)
})

t.test('DELETE /api/v1/users/me by the only two superusers at once: exactly one succeeds', async (t) => {
  const { app, root, rootId } = await setUp(t)
  const other = await signUp(app)
  await app.inject({ method: 'PATCH', url: `/api/v1/users/${other.id}`, headers: authHeader(root), payload: { isSuperuser: true } })
  const otherLogin = await login(app, other.email)
  // Deleting yourself leaves the other's token valid, so both requests reach the locked check.
  const results = await Promise.all([root, otherLogin].map((pair) =>
    app.inject({ method: 'DELETE', url: '/api/v1/users/me', headers: authHeader(pair) })))
  t.same(results.map((res) => res.statusCode).sort(), [204, 409])
  const left = await app.db.select({ id: users.id }).from(users).where(eq(users.isSuperuser, true))
  t.equal(left.length, 1)
  t.ok([rootId, other.id].includes(left[0]?.id ?? ''))
})

t.test('POST /api/v1/users with ALLOW_SIGNUP=false → 403 for anyone but an admin', async (t) => {
  const { app, root } = await setUp(t, { ALLOW_SIGNUP: 'false' })
  const body = () => ({ email: uniqueEmail(), password: TEST_PASSWORD })
  const anonymous = await app.inject({ method: 'POST', url: '/api/v1/users', payload: body() })
  t.equal(anonymous.statusCode, 403)
  t.match(anonymous.headers['content-type'], /^application\/problem\+json/)
  const plain = await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD)
  t.equal((await app.inject({ method: 'POST', url: '/api/v1/users', payload: body(), headers: authHeader(plain) })).statusCode, 403, 'a superuser without the admin scope')
  const created = await app.inject({ method: 'POST', url: '/api/v1/users', payload: body(), headers: authHeader(root) })
  t.equal(created.statusCode, 201)
  t.equal(created.json().isSuperuser, false)
})

t.test('no user route ever answers a password or a hash', async (t) => {
  const user = await signUp(app, { fullName: 'Safe' })
  const own = await login(app, user.email)
  const responses = [
    await app.inject({ method: 'POST', url: '/api/v1/users', payload: { email: uniqueEmail(), password: TEST_PASSWORD } }),
    await app.inject({ url: '/api/v1/users/me', headers: authHeader(own) }),
    await app.inject({ method: 'PATCH', url: '/api/v1/users/me', headers: authHeader(own), payload: { fullName: 'Safer' } }),
    await app.inject({ url: '/api/v1/users?limit=100', headers: admin }),
    await get(user.id),
    await patch(user.id, { fullName: 'Safest' }),
    await app.inject({ method: 'PUT', url: '/api/v1/users/me/password', headers: authHeader(own), payload: { currentPassword: 'wrong password', newPassword: 'whatever long' } })
  ]
  for (const res of responses) {
    t.ok(res.statusCode < 500)
    t.notMatch(res.body, /password(Hash)?"\s*:/i, `${res.statusCode} ${res.body.slice(0, 60)}`)
    t.notMatch(res.body, /\$argon2/)
  }
})

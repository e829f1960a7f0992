import { eq } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { refreshTokens, sessions } from '../../src/db/schema.js'
import { deleteExpired, hashRefreshToken } from '../../src/auth/repository.js'
import { logCapture } from '../log-capture.js'
import { authHeader, build, login, signUp, TEST_PASSWORD, uniqueEmail, type TokenPair } from '../helper.js'

const ADMIN_EMAIL = 'root@example.com'
const ADMIN_PASSWORD = 'root-password-123'
const env = { AUTH_RATE_LIMIT_PER_MINUTE: '1000', FIRST_SUPERUSER_EMAIL: ADMIN_EMAIL, FIRST_SUPERUSER_PASSWORD: ADMIN_PASSWORD, LOG_LEVEL: 'warn' }
const logs = logCapture()
const app = await build(t, env, { logStream: logs.stream })

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString()
const token = (payload: string | Record<string, unknown>, headers: Record<string, string> = typeof payload === 'string' ? FORM : {}) =>
  app.inject({ method: 'POST', url: '/api/v1/auth/token', payload, headers })
const refresh = (refreshToken: string, scope?: string) =>
  token(form({ grant_type: 'refresh_token', refresh_token: refreshToken, ...(scope === undefined ? {} : { scope }) }))
const me = (access: string | TokenPair) => app.inject({ url: '/api/v1/users/me', headers: authHeader(access) })

function claims (jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
}

function oauthError (t: Test, res: Awaited<ReturnType<typeof token>>, error: string) {
  t.equal(res.statusCode, 400)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.headers['cache-control'], 'no-store')
  t.same(Object.keys(res.json()).sort(), ['error', 'error_description'])
  t.equal(res.json().error, error)
}

t.test('POST /api/v1/auth/token → 200 with a form body, RFC 6749 response and no-store headers', async (t) => {
  const user = await signUp(app)
  const res = await token(form({ grant_type: 'password', username: user.email, password: TEST_PASSWORD }))
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers.pragma, 'no-cache')
  const body = res.json<TokenPair>()
  t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'scope', 'token_type'])
  t.equal(body.token_type, 'bearer')
  t.equal(body.expires_in, 900)
  t.equal(body.scope, 'profile items:write')
  t.match(body.refresh_token, /^[A-Za-z0-9_-]{43}$/)
  const header = JSON.parse(Buffer.from(body.access_token.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
  t.equal(header.alg, 'HS256')
  const payload = claims(body.access_token)
  t.equal(payload.sub, user.id)
  t.equal(payload.scope, 'profile items:write')
  t.equal(payload.iss, 'catalog-api')
  t.equal(payload.aud, 'catalog-api')
  t.type(payload.jti, 'string')
  t.type(payload.sid, 'string')
  t.equal((payload.exp as number) - (payload.iat as number), 900)
  t.equal((await me(body)).statusCode, 200)

  const [session] = await app.db.select().from(sessions).where(eq(sessions.id, payload.sid as string))
  t.equal(session?.userId, user.id)
  t.equal(session?.scope, 'profile items:write')
  const stored = await app.db.select().from(refreshTokens).where(eq(refreshTokens.sessionId, payload.sid as string))
  t.equal(stored.length, 1)
  t.equal(stored[0]?.tokenHash, hashRefreshToken(body.refresh_token), 'only the hash is stored')
  t.not(stored[0]?.tokenHash, body.refresh_token)
})

t.test('POST /api/v1/auth/token → 200 with a JSON body, the email in another case', async (t) => {
  const user = await signUp(app)
  const res = await token({ grant_type: 'password', username: user.email.toUpperCase(), password: TEST_PASSWORD })
  t.equal(res.statusCode, 200)
  t.equal(claims(res.json().access_token).sub, user.id)
})

t.test('POST /api/v1/auth/token → Swagger UI\'s Basic header, client_id and client_secret are ignored', async (t) => {
  const user = await signUp(app)
  const res = await token(form({ grant_type: 'password', username: user.email, password: TEST_PASSWORD, client_id: 'swagger', client_secret: '', scope: '' }), {
    ...FORM,
    authorization: 'Basic Og=='
  })
  t.equal(res.statusCode, 200)
  t.equal(res.json().scope, 'profile items:write')
})

t.test('POST /api/v1/auth/token and /revoke → a stale or invalid Bearer header is not read, so a client can still refresh', async (t) => {
  const user = await signUp(app)
  const tokens = await login(app, user.email)
  const stale = { ...FORM, authorization: 'Bearer not-a-valid-token' }
  const refreshed = await token(form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }), stale)
  t.equal(refreshed.statusCode, 200)
  const revoked = await app.inject({ method: 'POST', url: '/api/v1/auth/revoke', headers: stale, payload: form({ token: refreshed.json().refresh_token }) })
  t.equal(revoked.statusCode, 200)
  t.equal((await me(refreshed.json())).statusCode, 401, 'the revoked login ended')
})

t.test('POST /api/v1/auth/token → invalid_grant for a wrong password and an unknown email alike', async (t) => {
  const user = await signUp(app)
  const wrong = await token(form({ grant_type: 'password', username: user.email, password: 'not the password' }))
  const unknown = await token(form({ grant_type: 'password', username: uniqueEmail('nobody'), password: 'not the password' }))
  oauthError(t, wrong, 'invalid_grant')
  oauthError(t, unknown, 'invalid_grant')
  t.equal(wrong.body, unknown.body, 'the same body')
})

t.test('POST /api/v1/auth/token → wrong password and unknown email take about the same time', async (t) => {
  const user = await signUp(app)
  const time = async (username: string) => {
    const started = performance.now()
    await token(form({ grant_type: 'password', username, password: 'not the password' }))
    return performance.now() - started
  }
  await time(uniqueEmail('warm-up'))
  const known: number[] = []
  const unknown: number[] = []
  for (let i = 0; i < 5; i++) {
    known.push(await time(user.email))
    unknown.push(await time(uniqueEmail('nobody')))
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[2] ?? 0
  t.ok(median(unknown) > median(known) * 0.5, `unknown ${median(unknown).toFixed(1)} ms vs known ${median(known).toFixed(1)} ms`)
})

t.test('POST /api/v1/auth/token → invalid_request for a missing or repeated parameter or a bad body', async (t) => {
  oauthError(t, await token(form({ username: 'a@example.com', password: 'x' })), 'invalid_request')
  oauthError(t, await token(form({ grant_type: 'password', username: 'a@example.com' })), 'invalid_request')
  oauthError(t, await token(form({ grant_type: 'refresh_token' })), 'invalid_request')
  oauthError(t, await token('grant_type=password&grant_type=password&username=a%40example.com&password=x'), 'invalid_request')
  oauthError(t, await token({ grant_type: 'password', username: 'a@example.com', password: 123 }), 'invalid_request')
  oauthError(t, await token('{"grant_type":', { 'content-type': 'application/json' }), 'invalid_request')
  oauthError(t, await token(form({ grant_type: 'password', username: 'a\u0000@example.com', password: 'x' })), 'invalid_request')
})

t.test('POST /api/v1/auth/token → unsupported_grant_type', async (t) => {
  oauthError(t, await token(form({ grant_type: 'client_credentials' })), 'unsupported_grant_type')
})

t.test('POST /api/v1/auth/token → 415 problem for another media type', async (t) => {
  const res = await token('grant_type=password', { 'content-type': 'text/plain' })
  t.equal(res.statusCode, 415)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
})

t.test('POST /api/v1/auth/token → invalid_scope for an unknown scope, and admin for an ordinary user', async (t) => {
  const user = await signUp(app)
  oauthError(t, await token(form({ grant_type: 'password', username: user.email, password: TEST_PASSWORD, scope: 'profile everything' })), 'invalid_scope')
  oauthError(t, await token(form({ grant_type: 'password', username: user.email, password: TEST_PASSWORD, scope: 'admin' })), 'invalid_scope')
  const narrow = await login(app, user.email, TEST_PASSWORD, 'profile')
  t.equal(narrow.scope, 'profile')
})

t.test('POST /api/v1/auth/token → admin only when a superuser asks for it', async (t) => {
  const plain = await login(app, ADMIN_EMAIL, ADMIN_PASSWORD)
  t.equal(plain.scope, 'profile items:write', 'not granted unasked')
  const admin = await login(app, ADMIN_EMAIL, ADMIN_PASSWORD, 'admin profile items:write')
  t.equal(admin.scope, 'profile items:write admin')
  t.equal((await app.inject({ url: '/api/v1/users', headers: authHeader(admin) })).statusCode, 200)
  t.equal((await app.inject({ url: '/api/v1/users', headers: authHeader(plain) })).statusCode, 403)
})

t.test('POST /api/v1/auth/token → invalid_grant for a deactivated user', async (t) => {
  const user = await signUp(app)
  const admin = await login(app, ADMIN_EMAIL, ADMIN_PASSWORD, 'admin')
  const patched = await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: authHeader(admin), payload: { isActive: false } })
  t.equal(patched.statusCode, 200)
  oauthError(t, await token(form({ grant_type: 'password', username: user.email, password: TEST_PASSWORD })), 'invalid_grant')
})

t.test('POST /api/v1/auth/token refresh_token grant → a new pair; the old refresh token is spent', async (t) => {
  const user = await signUp(app)
  const first = await login(app, user.email)
  const res = await refresh(first.refresh_token)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const second = res.json<TokenPair>()
  t.not(second.refresh_token, first.refresh_token)
  t.not(second.access_token, first.access_token)
  t.equal(second.scope, 'profile items:write')
  t.equal(claims(second.access_token).sid, claims(first.access_token).sid, 'the same login')
  t.equal((await me(second)).statusCode, 200)
  const [spent] = await app.db.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, hashRefreshToken(first.refresh_token)))
  t.ok(spent?.usedAt instanceof Date, 'marked used')
  t.equal((await refresh(second.refresh_token)).statusCode, 200, 'the new one works once')
})

t.test('POST /api/v1/auth/token refresh_token grant → reusing a spent token revokes the whole login', async (t) => {
  const user = await signUp(app)
  const first = await login(app, user.email)
  const second = (await refresh(first.refresh_token)).json<TokenPair>()
  const reuse = await refresh(first.refresh_token)
  oauthError(t, reuse, 'invalid_grant')
  t.equal((await me(second)).statusCode, 401, 'the newest access token stops working')
  t.equal((await me(first)).statusCode, 401, 'so does the old one')
  oauthError(t, await refresh(second.refresh_token), 'invalid_grant')
  const [session] = await app.db.select().from(sessions).where(eq(sessions.id, claims(first.access_token).sid as string))
  t.ok(session?.revokedAt instanceof Date)
  const warning = logs.lines.find((line) => line.msg === 'refresh token reused: login revoked' && line.userId === user.id)
  t.ok(warning, 'a security warning is logged')
  t.notOk(logs.text().includes(first.refresh_token), 'without the token')
  t.equal((await me(await login(app, user.email))).statusCode, 200, 'other logins are unaffected')
})

t.test('POST /api/v1/auth/token refresh_token grant → narrows the scope, never widens it', async (t) => {
  const user = await signUp(app)
  const first = await login(app, user.email)
  const narrowed = await refresh(first.refresh_token, 'profile')
  t.equal(narrowed.statusCode, 200)
  t.equal(narrowed.json().scope, 'profile')
  t.equal(claims(narrowed.json().access_token).scope, 'profile')
  const after = await refresh(narrowed.json().refresh_token)
  t.equal(after.json().scope, 'profile', 'a later refresh without scope keeps the narrowed grant')
  oauthError(t, await refresh(after.json().refresh_token, 'profile items:write'), 'invalid_scope')

  const narrow = await login(app, user.email, TEST_PASSWORD, 'profile')
  const widened = await refresh(narrow.refresh_token, 'profile items:write')
  oauthError(t, widened, 'invalid_scope')
  const stillNarrow = await refresh(narrow.refresh_token)
  t.equal(stillNarrow.statusCode, 200, 'a refused scope does not spend the token')
  t.equal(stillNarrow.json().scope, 'profile')
})

t.test('POST /api/v1/auth/token refresh_token grant → invalid_grant for an unknown token', async (t) => {
  oauthError(t, await refresh('not-a-refresh-token'), 'invalid_grant')
})

t.test('POST /api/v1/auth/revoke → ends the login of a refresh token; unknown tokens also 200', async (t) => {
  const user = await signUp(app)
  const pair = await login(app, user.email)
  const other = await login(app, user.email)
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/revoke', headers: FORM, payload: form({ token: pair.refresh_token, token_type_hint: 'refresh_token', client_id: 'x' }) })
  t.equal(res.statusCode, 200)
  t.equal(res.body, '')
  t.equal((await me(pair)).statusCode, 401, 'its access token ends at once')
  oauthError(t, await refresh(pair.refresh_token), 'invalid_grant')
  t.equal((await me(other)).statusCode, 200, 'another login goes on')

  const unknown = await app.inject({ method: 'POST', url: '/api/v1/auth/revoke', payload: { token: 'unknown-token' } })
  t.equal(unknown.statusCode, 200)
  const again = await app.inject({ method: 'POST', url: '/api/v1/auth/revoke', payload: { token: pair.refresh_token } })
  t.equal(again.statusCode, 200)
})

t.test('POST /api/v1/auth/revoke → an access token ends its login', async (t) => {
  const user = await signUp(app)
  const pair = await login(app, user.email)
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/revoke', payload: { token: pair.access_token, token_type_hint: 'access_token' } })
  t.equal(res.statusCode, 200)
  t.equal((await me(pair)).statusCode, 401)
  const bogus = await app.inject({ method: 'POST', url: '/api/v1/auth/revoke', payload: { token: 'a.b.c' } })
  t.equal(bogus.statusCode, 200)
})

t.test('POST /api/v1/auth/revoke → invalid_request without a token', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/revoke', payload: {} })
  t.equal(res.statusCode, 400)
  t.equal(res.json().error, 'invalid_request')
})

t.test('cleanup deletes expired refresh tokens and ended logins', async (t) => {
  const user = await signUp(app)
  const kept = await login(app, user.email)
  const revoked = await login(app, user.email)
  await app.inject({ method: 'POST', url: '/api/v1/auth/revoke', payload: { token: revoked.refresh_token } })
  const expiring = await login(app, user.email)
  const expiringSid = claims(expiring.access_token).sid as string
  await app.db.update(refreshTokens).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(refreshTokens.sessionId, expiringSid))
  await app.db.update(sessions).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(sessions.id, expiringSid))

  const deleted = await deleteExpired(app.db, new Date())
  t.ok(deleted.sessions >= 2)
  t.ok(deleted.refreshTokens >= 1)
  const left = await app.db.select({ id: sessions.id }).from(sessions).where(eq(sessions.userId, user.id))
  t.same(left.map((row) => row.id), [claims(kept.access_token).sid])
  t.equal((await me(kept)).statusCode, 200)
})

t.test('routes other than the token endpoints answer 415 to form bodies', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/api/v1/users', headers: FORM, payload: form({ email: uniqueEmail(), password: TEST_PASSWORD }) })
  t.equal(res.statusCode, 415)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
})

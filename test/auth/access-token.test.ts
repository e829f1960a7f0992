import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { authHeader, b64, build, jwt, login, signUp } from '../helper.js'

const ADMIN = { FIRST_SUPERUSER_EMAIL: 'root@example.com', FIRST_SUPERUSER_PASSWORD: 'root-password-123' }
const app = await build(t, { AUTH_RATE_LIMIT_PER_MINUTE: '1000', ...ADMIN })

/** Valid claims of a real login, to be spoiled one at a time. */
async function validClaims () {
  const user = await signUp(app)
  const pair = await login(app, user.email)
  const claims = JSON.parse(Buffer.from(pair.access_token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
  return { user, pair, claims }
}

const me = (headers: Record<string, string>) => app.inject({ url: '/api/v1/users/me', headers })

function rejected (t: Test, res: Awaited<ReturnType<typeof me>>, description = /./) {
  t.equal(res.statusCode, 401)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(res.headers['www-authenticate'], /^Bearer realm="catalog-api", error="invalid_token", error_description="[^"]+"$/)
  t.match(res.headers['www-authenticate'], description)
  t.equal(res.json().status, 401)
}

t.test('GET /api/v1/users/me → 200 with a hand-made token carrying the right claims (the control case)', async (t) => {
  const { claims, user } = await validClaims()
  const res = await me(authHeader(jwt(claims)))
  t.equal(res.statusCode, 200)
  t.equal(res.json().id, user.id)
})

t.test('GET /api/v1/users/me → 401 with a tampered token', async (t) => {
  const { pair, claims } = await validClaims()
  const [head, , signature] = pair.access_token.split('.')
  rejected(t, await me(authHeader(`${head}.${b64({ ...claims, scope: 'profile items:write admin' })}.${signature}`)))
  const flipped = pair.access_token.slice(0, -2) + (pair.access_token.endsWith('AA') ? 'BB' : 'AA')
  rejected(t, await me(authHeader(flipped)))
  rejected(t, await me(authHeader(jwt(claims, { secret: 'another-secret-that-is-at-least-32-chars' }))))
})

t.test('GET /api/v1/users/me → 401 with alg=none and with an algorithm other than HS256', async (t) => {
  const { claims } = await validClaims()
  rejected(t, await me(authHeader(jwt(claims, { alg: 'none' }))))
  rejected(t, await me(authHeader(jwt(claims, { alg: 'HS512' }))))
})

t.test('GET /api/v1/users/me → 401 with an expired token; a few seconds of clock skew are allowed', async (t) => {
  const { claims } = await validClaims()
  const now = Math.floor(Date.now() / 1000)
  rejected(t, await me(authHeader(jwt({ ...claims, iat: now - 1000, exp: now - 60 }))), /expired/)
  t.equal((await me(authHeader(jwt({ ...claims, iat: now - 1000, exp: now - 2 })))).statusCode, 200)
})

t.test('GET /api/v1/users/me → 401 with a wrong audience, a wrong issuer or a missing claim', async (t) => {
  const { claims } = await validClaims()
  rejected(t, await me(authHeader(jwt({ ...claims, aud: 'someone-else' }))))
  rejected(t, await me(authHeader(jwt({ ...claims, iss: 'someone-else' }))))
  const { jti: _jti, ...withoutJti } = claims
  rejected(t, await me(authHeader(jwt(withoutJti))))
  rejected(t, await me(authHeader(jwt({ ...claims, sid: 'not-a-uuid' }))))
  rejected(t, await me(authHeader(jwt({ ...claims, sid: randomUUID() }))), /ended/)
  rejected(t, await me(authHeader(jwt({ ...claims, sub: randomUUID() }))), /ended/)
})

t.test('GET /api/v1/users/me → 401 without iss or aud, or issued in the future beyond the clock skew', async (t) => {
  const { claims } = await validClaims()
  const { iss: _iss, ...withoutIss } = claims
  const { aud: _aud, ...withoutAud } = claims
  rejected(t, await me(authHeader(jwt(withoutIss))))
  rejected(t, await me(authHeader(jwt(withoutAud))))
  const now = Math.floor(Date.now() / 1000)
  rejected(t, await me(authHeader(jwt({ ...claims, iat: now + 60 }))))
  rejected(t, await me(authHeader(jwt({ ...claims, iat: 'yesterday' }))))
  t.equal((await me(authHeader(jwt({ ...claims, iat: now + 2 })))).statusCode, 200, 'a skew of 2 s is allowed')
})

t.test('GET /api/v1/users/me → 401 with Bearer realm and no error without a token, or with a Basic header', async (t) => {
  const cases: Array<Record<string, string>> = [{}, { authorization: 'Basic Og==' }]
  for (const headers of cases) {
    const res = await me(headers)
    t.equal(res.statusCode, 401)
    t.equal(res.headers['www-authenticate'], 'Bearer realm="catalog-api"')
    t.match(res.headers['content-type'], /^application\/problem\+json/)
  }
  rejected(t, await me({ authorization: 'Bearer' }))
  rejected(t, await me({ authorization: 'Bearer not.a.jwt' }))
})

t.test('an invalid token is 401 even on a public route', async (t) => {
  rejected(t, await app.inject({ url: '/', headers: authHeader('garbage') }))
  const signUpRes = await app.inject({ method: 'POST', url: '/api/v1/users', headers: authHeader('garbage'), payload: { email: 'x@example.com', password: 'long enough' } })
  t.equal(signUpRes.statusCode, 401)
  t.equal((await app.inject({ url: '/', headers: { authorization: 'Basic Og==' } })).statusCode, 200, 'a Basic header is not ours to judge')
})

t.test('GET /api/v1/users → 403 with insufficient_scope in WWW-Authenticate for a token without admin', async (t) => {
  const { pair } = await validClaims()
  const res = await app.inject({ url: '/api/v1/users', headers: authHeader(pair) })
  t.equal(res.statusCode, 403)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="catalog-api", error="insufficient_scope", scope="admin"')
})

t.test('GET /api/v1/users/me → 403 for a token narrowed to items:write', async (t) => {
  const user = await signUp(app)
  const pair = await login(app, user.email, undefined, 'items:write')
  const res = await me(authHeader(pair))
  t.equal(res.statusCode, 403)
  t.equal(res.headers['www-authenticate'], 'Bearer realm="catalog-api", error="insufficient_scope", scope="profile"')
})

t.test('a demoted superuser\'s admin token loses admin at once', async (t) => {
  const root = await login(app, ADMIN.FIRST_SUPERUSER_EMAIL, ADMIN.FIRST_SUPERUSER_PASSWORD, 'admin profile')
  const user = await signUp(app)
  const promote = await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: authHeader(root), payload: { isSuperuser: true } })
  t.equal(promote.json().isSuperuser, true)
  const second = await login(app, user.email, undefined, 'admin')
  t.equal((await app.inject({ url: '/api/v1/users', headers: authHeader(second) })).statusCode, 200)
  await app.inject({ method: 'PATCH', url: `/api/v1/users/${user.id}`, headers: authHeader(root), payload: { isSuperuser: false } })
  t.equal((await app.inject({ url: '/api/v1/users', headers: authHeader(second) })).statusCode, 403)
})

t.test('without JWT_SECRET a secret is generated once under DATA_DIR (mode 0600) and kept across restarts', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'catalog-auth-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const first = await build(t, { JWT_SECRET: '', DATA_DIR: dataDir })
  const path = join(dataDir, 'jwt-secret')
  t.equal((await stat(path)).mode & 0o777, 0o600)
  const secret = await readFile(path, 'utf8')
  t.ok(secret.length >= 32)
  const token = first.issueAccessToken({ sub: randomUUID(), sid: randomUUID(), scope: 'profile' })
  const second = await build(t, { JWT_SECRET: '', DATA_DIR: dataDir })
  t.equal(await readFile(path, 'utf8'), secret, 'not regenerated')
  t.ok(second.jwt.verify(token), 'tokens of the first instance verify on the second')
})

import t, { type Test } from 'tap'
import { authHeader, build, login, TEST_PASSWORD } from '../helper.js'
import { logCapture } from '../log-capture.js'
import { connect, createItem, FAST_REALTIME, subscribe, user } from './helpers.js'

const ROOT = { FIRST_SUPERUSER_EMAIL: 'root@example.com', FIRST_SUPERUSER_PASSWORD: 'root-password-123' }
const app = await build(t, ROOT, { realtime: FAST_REALTIME })
const admin = await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD, 'admin')

/** Waits for the socket to close, and checks it was told why first. */
async function endsWithin (t: Test, socket: Awaited<ReturnType<typeof connect>>, code: string, ms = 3_000) {
  const started = Date.now()
  const closed = await socket.closed
  t.equal(closed.code, 1008, 'closed with 1008')
  t.ok(Date.now() - started < ms, `within ${ms} ms`)
  t.match(socket.messages.at(-1), { type: 'error', code })
  return closed
}

t.test('a socket is closed with 1008 when its access token expires', async (t) => {
  const short = await build(t, { ACCESS_TOKEN_TTL: '2s' }, { realtime: FAST_REALTIME })
  const ada = await user(short)
  const socket = await connect(t, short, { token: ada.token })
  await subscribe(socket, ['items'])
  const closed = await endsWithin(t, socket, 'token_expired', 5_000)
  t.equal(closed.reason, 'The access token has expired')
})

t.test('a socket is closed with 1008 when its login is revoked (RFC 7009)', async (t) => {
  const ada = await user(app)
  const socket = await connect(t, app, { token: ada.token })
  const other = await connect(t, app, { token: await login(app, ada.email) })
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `token=${ada.token.refresh_token}`
  })
  t.equal(res.statusCode, 200)
  const closed = await endsWithin(t, socket, 'login_ended')
  t.equal(closed.reason, 'The login of this access token has ended')
  t.same(await other.ask({ type: 'ping' }), { type: 'pong' }, 'another login of the same user stays connected')
})

t.test('a password change closes every socket of the user', async (t) => {
  const ada = await user(app)
  const sockets = [await connect(t, app, { token: ada.token }), await connect(t, app, { token: await login(app, ada.email) })]
  const res = await app.inject({
    method: 'PUT',
    url: '/api/v1/users/me/password',
    headers: authHeader(ada.token),
    payload: { currentPassword: TEST_PASSWORD, newPassword: 'an entirely new password' }
  })
  t.equal(res.statusCode, 204)
  for (const socket of sockets) await endsWithin(t, socket, 'login_ended')
})

t.test('deactivating or deleting a user closes their sockets; anonymous ones stay', async (t) => {
  const ada = await user(app)
  const bob = await user(app)
  const adas = await connect(t, app, { token: ada.token })
  const bobs = await connect(t, app, { token: bob.token })
  const anonymous = await connect(t, app)
  const deactivated = await app.inject({ method: 'PATCH', url: `/api/v1/users/${ada.id}`, headers: authHeader(admin), payload: { isActive: false } })
  t.equal(deactivated.statusCode, 200)
  await endsWithin(t, adas, 'login_ended')
  const deleted = await app.inject({ method: 'DELETE', url: `/api/v1/users/${bob.id}`, headers: authHeader(admin) })
  t.equal(deleted.statusCode, 204)
  await endsWithin(t, bobs, 'login_ended')
  t.same(await anonymous.ask({ type: 'ping' }), { type: 'pong' })
})

t.test('a message over 64 KiB closes the socket with 1009', async (t) => {
  const socket = await connect(t, app)
  socket.send({ type: 'echo', data: 'x'.repeat(65_536) })
  t.equal((await socket.closed).code, 1009)
})

t.test('a message just under 64 KiB is echoed', async (t) => {
  const socket = await connect(t, app)
  const data = 'x'.repeat(65_000)
  t.same(await socket.ask({ type: 'echo', data }), { type: 'echo', data })
})

t.test('too many messages: the excess is dropped with one rate_limited error a second; a client that keeps on is closed with 1008', async (t) => {
  const limited = await build(t, {}, { realtime: { limits: { messagesPerSecond: 5, messageBurst: 5, droppedAllowance: 20 } } })
  const socket = await connect(t, limited)
  for (let sent = 0; sent < 10; sent++) socket.send({ type: 'ping' })
  const answers = await socket.rest(200)
  t.same(answers.filter((answer) => answer.type === 'pong').length, 5, 'the burst is answered')
  t.same(answers.filter((answer) => answer.type === 'error'), [{ type: 'error', code: 'rate_limited', message: 'More than 5 messages a second: this one was dropped' }])
  for (let sent = 0; sent < 40; sent++) socket.send({ type: 'ping' })
  const closed = await socket.closed
  t.same(closed, { code: 1008, reason: 'Too many messages' })
})

t.test('on shutdown every socket gets 1001', async (t) => {
  const closing = await build(t, {}, { realtime: FAST_REALTIME })
  const ada = await user(closing)
  const sockets = [await connect(t, closing), await connect(t, closing, { token: ada.token })]
  for (const socket of sockets) await subscribe(socket, ['items'])
  await closing.close()
  for (const socket of sockets) t.same(await socket.closed, { code: 1001, reason: 'The server is shutting down' })
})

t.test('the access_token query parameter never reaches the log', async (t) => {
  const logs = logCapture()
  const logged = await build(t, { LOG_LEVEL: 'trace' }, { logStream: logs.stream })
  const ada = await user(logged)
  const socket = await connect(t, logged, { token: ada.token })
  t.same(await socket.ask({ type: 'ping' }), { type: 'pong' })
  await t.rejects(connect(t, logged, { token: `${ada.token.access_token}x` }), /401/)
  await logged.inject({ url: `/api/v1/events?topics=items&access_token=${ada.token.access_token}x` })
  t.ok(logs.lines.length > 0)
  t.notMatch(logs.text(), ada.token.access_token, 'no token in any log line')
  t.match(logs.text(), 'access_token=[Redacted]')
})

t.test('/metrics: open connections, events published and delivered, delivery lag', async (t) => {
  const measured = await build(t)
  const ada = await user(measured)
  const socket = await connect(t, measured)
  await subscribe(socket, ['items'])
  await createItem(measured, ada.token)
  await socket.next()
  const text = (await measured.inject({ url: '/metrics' })).body
  t.match(text, /^realtime_connections\{transport="websocket"\} 1$/m)
  t.match(text, /^realtime_connections\{transport="sse"\} 0$/m)
  t.match(text, /^realtime_events_published_total\{name="item.created"\} 1$/m)
  t.match(text, /^realtime_events_delivered_total\{transport="websocket"\} 1$/m)
  t.match(text, /^realtime_delivery_lag_seconds_count 1$/m)
})

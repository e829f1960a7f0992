import { connect } from 'node:net'
import { sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { build } from '../helper.js'
import { logCapture } from '../log-capture.js'

const SECRET_PARAMETER = 'alice@example.com-secret-parameter'

function failingRoutes (app: FastifyInstance) {
  app.get('/test/bug', async () => {
    throw new TypeError('internal detail: connection string postgres://admin:hunter2@db/x')
  })
  app.get('/test/bad-query', async () => {
    // A real failing query: Postgres quotes the bad parameter in its message, drizzle adds the SQL and params.
    await app.db.execute(sql`select ${SECRET_PARAMETER}::integer as n`)
    return {}
  })
  app.get('/test/wrapped-bad-query', async () => {
    try {
      await app.db.execute(sql`select ${SECRET_PARAMETER}::integer as n`)
    } catch (error) {
      throw new Error('loading the thing failed', { cause: error })
    }
    return {}
  })
}

t.test('a thrown bug → 500 problem hiding internals; the log has the stack and request id', async (t) => {
  const logs = logCapture()
  const app = await build(t, { LOG_LEVEL: 'info' }, { logStream: logs.stream }, failingRoutes)
  const res = await app.inject({ url: '/test/bug', headers: { 'x-request-id': 'bug-request-1' } })
  t.equal(res.statusCode, 500)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.headers['x-request-id'], 'bug-request-1')
  t.notMatch(res.body, /hunter2|internal detail|TypeError|at /)
  t.match(res.json(), { status: 500, type: 'urn:catalog-api:problem:internal-error', instance: '/test/bug' })
  const line = logs.lines.find((entry) => entry.msg === 'unhandled error')
  t.ok(line, 'the error is logged')
  t.equal(line?.reqId, 'bug-request-1')
  t.equal(line?.level, 50)
  t.match(line?.err, { type: 'TypeError', stack: /at / })
})

t.test('a failing SQL query → 500 whose body and log never carry the query text or parameters', async (t) => {
  const logs = logCapture()
  const app = await build(t, { LOG_LEVEL: 'info' }, { logStream: logs.stream }, failingRoutes)
  for (const url of ['/test/bad-query', '/test/wrapped-bad-query']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 500, url)
    t.notMatch(res.body, SECRET_PARAMETER)
    t.notMatch(res.body, /select/i)
  }
  t.notMatch(logs.text(), SECRET_PARAMETER, 'the parameter is not logged')
  t.notMatch(logs.text(), /select .*integer/i, 'the SQL is not logged')
  const [direct, wrapped] = logs.lines.filter((entry) => entry.msg === 'unhandled error')
  t.match(direct?.err, { type: 'DatabaseError', code: '22P02', message: 'database error 22P02', stack: /at / })
  t.match(wrapped?.err, { type: 'Error', code: '22P02', message: 'loading the thing failed (caused by database error 22P02)' })
})

t.test('X-Request-Id: a well-formed one is honoured and echoed on every response, a malformed one replaced', async (t) => {
  const logs = logCapture()
  const app = await build(t, { LOG_LEVEL: 'info' }, { logStream: logs.stream })
  for (const url of ['/health/live', '/no/such/route', '/%E0%A4%A']) {
    const res = await app.inject({ url, headers: { 'x-request-id': 'client-id.42:abc' } })
    t.equal(res.headers['x-request-id'], 'client-id.42:abc', url)
  }
  const made = await app.inject({ url: '/health/live' })
  t.match(made.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'made when absent')
  for (const bad of ['has space', 'x'.repeat(129), 'semi;colon', 'new\u2028line']) {
    const res = await app.inject({ url: '/nope', headers: { 'x-request-id': bad } })
    t.not(res.headers['x-request-id'], bad)
    t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  }
  t.ok(logs.lines.some((entry) => entry.reqId === 'client-id.42:abc'), 'logs carry the request id')
})

t.test('logs redact Authorization, passwords, refresh tokens and access_token query values', async (t) => {
  const logs = logCapture()
  const app = await build(t, { LOG_LEVEL: 'info' }, { logStream: logs.stream }, (app) => {
    app.post('/test/login', { schema: { body: { type: 'object' } } }, async (request) => {
      request.log.info({ body: request.body, headers: request.headers }, 'login attempt')
      return {}
    })
  })
  await app.inject({
    method: 'POST',
    url: '/test/login?access_token=query-token-value&x=1',
    // Basic, not Bearer: the auth plugin answers a bad bearer token with 401 before the route logs.
    headers: { authorization: 'Basic header-token-value', cookie: 'session=cookie-value' },
    payload: { password: 'password-value', refresh_token: 'refresh-value', currentPassword: 'current-value', newPassword: 'new-value' }
  })
  const text = logs.text()
  for (const secret of ['query-token-value', 'header-token-value', 'cookie-value', 'password-value', 'refresh-value', 'current-value', 'new-value']) {
    t.notMatch(text, secret, `${secret} is not logged`)
  }
  t.match(text, /access_token=\[Redacted\]&x=1/)
  t.ok(logs.lines.some((entry) => entry.msg === 'login attempt'))
})

t.test('requests arriving while the app closes → 503 problem with Connection: close', async (t) => {
  let release: () => void = () => undefined
  let started: () => void = () => undefined
  const handlerStarted = new Promise<void>((resolve) => { started = resolve })
  const app = await build(t, {}, {}, (app) => {
    app.get('/test/slow', async () => {
      started()
      await new Promise<void>((resolve) => { release = resolve })
      return { slow: true }
    })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')

  const socket = connect(address.port, '127.0.0.1')
  let received = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => { received += chunk })
  const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.write('GET /test/slow HTTP/1.1\r\nHost: x\r\n\r\n')
  await handlerStarted

  const closed = app.close()
  // Pipelined on the busy keep-alive connection: it arrives after close has begun.
  await new Promise((resolve) => setTimeout(resolve, 50))
  socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n')
  await new Promise((resolve) => setTimeout(resolve, 50))
  release()
  await closed
  await ended

  const [first, second] = received.split(/(?=HTTP\/1\.1 )/)
  t.match(first, /^HTTP\/1\.1 200/)
  t.match(second, /^HTTP\/1\.1 503/)
  t.match(second, /\r\nconnection: close\r\n/i)
  t.match(second, /\r\ncontent-type: application\/problem\+json/i)
  t.match(second, /\r\nretry-after: \d+\r\n/i)
  t.match(second, /"status":503/)
})

t.test('clientErrorHandler: a garbage request line on a raw socket → 400 problem+json, then close', async (t) => {
  const app = await build(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const answer = (bytes: string) => new Promise<string>((resolve, reject) => {
    const socket = connect(address.port, '127.0.0.1', () => socket.write(bytes))
    let received = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { received += chunk })
    socket.on('error', reject)
    socket.on('close', () => resolve(received))
  })

  const garbage = await answer('THIS IS NOT HTTP\r\n\r\n')
  t.match(garbage, /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.match(garbage, /\r\nContent-Type: application\/problem\+json\r\n/)
  t.match(garbage, /\r\nX-Request-Id: [0-9a-f-]{36}\r\n/)
  t.match(garbage, /\r\nX-Content-Type-Options: nosniff\r\n/)
  const body = JSON.parse(garbage.slice(garbage.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>
  t.match(body, { status: 400, title: 'Bad Request', type: 'urn:catalog-api:problem:bad-request' })

  const huge = await answer(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
  t.match(huge, /^HTTP\/1\.1 431 /)
  t.match(huge, /"status":431/)
})

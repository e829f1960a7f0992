import { join } from 'node:path'
import t from 'tap'
import { TEST_JWT_SECRET } from '../helper.js'
import { listening, scratch, startServer } from '../server-process.js'

t.test('server: bad variables → one stderr line each and exit code 1', async (t) => {
  const cwd = await scratch(t)
  const server = startServer(t, {
    PORT: 'abc',
    ACCESS_TOKEN_TTL: '15',
    ALLOW_SIGNUP: 'maybe',
    LOG_LEVEL: 'loud',
    JWT_SECRET: 'too-short-secret',
    DATABASE_URL: 'mysql://user:pw@host/db'
  }, cwd)
  t.equal(await server.exited, 1)
  const lines = server.stderr().trim().split('\n')
  t.same(lines.map((line) => line.split(':').slice(0, 2).join(':')).sort(), [
    'config: ACCESS_TOKEN_TTL', 'config: ALLOW_SIGNUP', 'config: DATABASE_URL', 'config: JWT_SECRET', 'config: LOG_LEVEL', 'config: PORT'
  ])
  t.match(server.stderr(), 'config: ACCESS_TOKEN_TTL: must be a positive whole number with a unit')
  t.match(server.stderr(), 'config: LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "loud")')
  t.notMatch(server.stderr(), 'too-short-secret', 'secrets are not echoed')
  t.notMatch(server.stderr(), 'user:pw', 'URLs are not echoed')
  t.equal(server.stdout(), '')
})

t.test('server: NODE_ENV=production without JWT_SECRET → refuses to start', async (t) => {
  const cwd = await scratch(t)
  const server = startServer(t, { NODE_ENV: 'production', DATA_DIR: cwd }, cwd)
  t.equal(await server.exited, 1)
  t.match(server.stderr(), /^config: JWT_SECRET: is required when NODE_ENV=production/)
})

t.test('server: production without DATABASE_URL warns loudly, serves, refuses a second process on its DATA_DIR, and stops on SIGTERM', async (t) => {
  const cwd = await scratch(t)
  const env = { NODE_ENV: 'production', JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: join(cwd, 'data') }
  const server = startServer(t, env, cwd)
  const port = await listening(server)
  t.match(server.stdout(), /"level":40,[^\n]*"msg":"!!! NODE_ENV=production without DATABASE_URL/)
  const res = await fetch(`http://127.0.0.1:${port}/health/ready`)
  t.equal(res.status, 200)

  const second = startServer(t, env, cwd)
  t.equal(await second.exited, 1)
  t.match(second.stderr(), /could not start: the embedded database in .* is in use by another process/)

  server.kill('SIGTERM')
  t.equal(await server.exited, 0)
  t.match(server.stdout(), /"signal":"SIGTERM"[^\n]*"msg":"shutting down"/)
})

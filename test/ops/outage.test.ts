import { setTimeout as sleep } from 'node:timers/promises'
import { DrizzleQueryError } from 'drizzle-orm/errors'
import pg from 'pg'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { databaseUnavailable } from '../../src/db/errors.js'
import { proveResponses } from '../contract/responses.js'
import { settledPool, TEST_PASSWORD, testConfig, uniqueEmail } from '../helper.js'
import { throwawayPostgres } from '../throwaway-postgres.js'

const WRITERS = 8
const OUTAGE_MS = 4_000

type Phase = 'before' | 'outage' | 'after'
interface Answer { phase: Phase, status: number, ms: number, problem: boolean, retryAfter: string | null, at: number }

const cluster = await throwawayPostgres(t)
const skip = typeof cluster === 'string' ? `needs a Postgres of its own to stop: ${cluster}` : false

t.test('Postgres stopped under concurrent writes → 503 problems with Retry-After at once, no 500, nothing acknowledged lost, 201 again after the restart', { skip }, async (t) => {
  if (typeof cluster === 'string') return
  const app = await buildApp(testConfig({ DATABASE_URL: cluster.url }), { loadShedding: { maxEventLoopDelay: 0, maxHeapUsedBytes: 0 } })
  t.teardown(() => app.close())
  proveResponses(app)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })

  const email = uniqueEmail()
  t.equal((await fetch(`${base}/api/v1/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: TEST_PASSWORD }) })).status, 201)
  const token = await fetch(`${base}/api/v1/auth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'password', username: email, password: TEST_PASSWORD }) })
  const { access_token: accessToken } = await token.json() as { access_token: string }

  let phase: Phase = 'before'
  const load = new AbortController()
  const answers: Answer[] = []
  const acknowledged: string[] = []
  const socketErrors: string[] = []
  const writer = async (w: number) => {
    for (let n = 0; !load.signal.aborted; n++) {
      const started = performance.now()
      const during = phase
      let status = 0
      try {
        const res = await fetch(`${base}/api/v1/items`, {
          method: 'POST',
          headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: `writer ${w} item ${n}`, price: 1 })
        })
        status = res.status
        const body = await res.json() as { id?: string }
        if (res.status === 201 && body.id !== undefined) acknowledged.push(body.id)
        answers.push({
          phase: during,
          status: res.status,
          ms: performance.now() - started,
          problem: res.headers.get('content-type')?.startsWith('application/problem+json') === true,
          retryAfter: res.headers.get('retry-after'),
          at: performance.now()
        })
      } catch (error) {
        socketErrors.push((error as Error).message)
      }
      // A client honouring Retry-After would wait; a short pause keeps the outage from being a busy loop.
      if (status === 503) await sleep(50)
    }
  }
  const writers = Array.from({ length: WRITERS }, (_, w) => writer(w))

  await sleep(1_000)
  await cluster.stop()
  phase = 'outage'
  await sleep(500)
  const readyDuring = await fetch(`${base}/health/ready`)
  t.equal(readyDuring.status, 503, '/health/ready says 503 while the database is down')
  t.ok(readyDuring.headers.get('retry-after'), 'with Retry-After')
  await sleep(OUTAGE_MS - 500)
  await cluster.start()
  const restarted = performance.now()
  phase = 'after'
  while (!answers.some((answer) => answer.status === 201 && answer.at > restarted) && performance.now() - restarted < 10_000) await sleep(20)
  const firstCreated = answers.find((answer) => answer.status === 201 && answer.at > restarted)
  t.ok(firstCreated !== undefined && firstCreated.at - restarted < 2_000, `201 again ${Math.round((firstCreated?.at ?? Infinity) - restarted)} ms after the restart`)
  await sleep(500)
  load.abort()
  await Promise.all(writers)

  t.same(socketErrors, [], 'no connection was dropped')
  const statuses = [...new Set(answers.map((answer) => answer.status))].sort()
  t.same(statuses, [201, 503], 'every write was answered 201 or 503, never 500')
  const unavailable = answers.filter((answer) => answer.status === 503)
  t.ok(unavailable.length > 0, `${unavailable.length} writes answered 503 during the outage`)
  t.ok(unavailable.every((answer) => answer.problem && answer.retryAfter !== null), 'every 503 is a problem with Retry-After')
  const slowest = Math.max(...answers.filter((answer) => answer.phase === 'outage').map((answer) => answer.ms))
  t.ok(slowest < OUTAGE_MS / 2, `no request waited for the database to come back (slowest during the outage: ${Math.round(slowest)} ms)`)
  t.equal((await fetch(`${base}/health/ready`)).status, 200, '/health/ready is 200 again')

  const client = new pg.Client({ connectionString: cluster.url })
  await client.connect()
  t.teardown(() => client.end())
  const { rows } = await client.query<{ id: string }>('select id from items where id = any($1::uuid[])', [acknowledged])
  t.equal(rows.length, acknowledged.length, `all ${acknowledged.length} acknowledged writes are stored`)
  const pool = await settledPool(app)
  t.equal(pool.idle, pool.total, 'no pool client was lost in the outage')

  // What a failover to a read-only standby looks like to the sessions already open.
  await client.query('alter system set default_transaction_read_only = on')
  await client.query('select pg_reload_conf()')
  const write = () => fetch(`${base}/api/v1/items`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'on a read-only database', price: 1 })
  })
  // Sessions take the reloaded setting at their next statement, after the server has signalled them.
  let readOnly = await write()
  for (const deadline = performance.now() + 5_000; readOnly.status === 201 && performance.now() < deadline; readOnly = await write()) await sleep(100)
  t.equal(readOnly.status, 503, 'a write on a read-only database is 503')
  t.match(readOnly.headers.get('content-type'), /^application\/problem\+json/)
  t.ok(readOnly.headers.get('retry-after'))
  t.equal((await fetch(`${base}/api/v1/items`, { headers: { authorization: `Bearer ${accessToken}` } })).status, 200, 'reads go on')
  // Writable again before the app closes: closing completes the job queue's work, which writes.
  await client.query('alter system reset default_transaction_read_only')
  await client.query('select pg_reload_conf()')
})

t.test('databaseUnavailable: what says the database cannot serve now, and what does not', async (t) => {
  const failure = (message: string, code?: string) => Object.assign(new Error(message), code === undefined ? {} : { code })
  const wrapped = (cause: Error) => new DrizzleQueryError('insert into items …', [], cause)
  const unavailable: Array<[string, Error]> = [
    ['too many clients (53300)', failure('sorry, too many clients already', '53300')],
    ['starting up or shutting down (57P03)', failure('the database system is shutting down', '57P03')],
    ['terminated by an administrator (57P01)', wrapped(failure('terminating connection due to administrator command', '57P01'))],
    ['a connection failure (08006)', failure('connection failure', '08006')],
    ['read-only after a failover (25006)', wrapped(failure('cannot execute INSERT in a read-only transaction', '25006'))],
    ['connection refused', wrapped(Object.assign(new AggregateError([], 'connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))],
    ['a connection reset', failure('read ECONNRESET', 'ECONNRESET')],
    ['a pool that cannot connect in time', failure('timeout exceeded when trying to connect')],
    ['a connection lost mid-query', wrapped(failure('Connection terminated unexpectedly'))]
  ]
  for (const [name, error] of unavailable) t.ok(databaseUnavailable(error), name)
  const other: Array<[string, Error]> = [
    ['a unique violation (23505)', wrapped(failure('duplicate key value', '23505'))],
    ['a missing table (42P01)', failure('relation does not exist', '42P01')],
    ['a bug', new TypeError('cannot read properties of undefined')]
  ]
  for (const [name, error] of other) t.notOk(databaseUnavailable(error), name)
})

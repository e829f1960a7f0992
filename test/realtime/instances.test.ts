import { randomBytes } from 'node:crypto'
import { readMigrationFiles } from 'drizzle-orm/migrator'
import t from 'tap'
import { migrationsFolder } from '../../src/paths.js'
import { quoteIdent, sharedPostgres, withClient } from '../databases.js'
import { TEST_JWT_SECRET, TEST_PASSWORD, uniqueEmail } from '../helper.js'
import { listening, scratch, startServer, type Server } from '../server-process.js'
import { connectTo, subscribe } from './helpers.js'

// Two server processes on one Postgres database, as a deployment runs them: only a machine without Postgres skips this.
const { target, skip } = await sharedPostgres()
if (skip !== false) console.log(`# skipping the multi-instance tests: ${skip}`)

async function json<T> (response: Promise<Response>): Promise<T> {
  const res = await response
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`)
  return await res.json() as T
}

t.test('two instances on one Postgres: both start at once on an empty database, share events, and a reconnect to the other misses nothing', { skip }, async (t) => {
  // An empty database, not the migrated template: both instances race to migrate it.
  const name = `catalog_instances_${randomBytes(6).toString('hex')}`
  await withClient(target.maintenance, (client) => client.query(`create database ${quoteIdent(name)}`))
  t.teardown(() => withClient(target.maintenance, (client) => client.query(`drop database if exists ${quoteIdent(name)} with (force)`)))
  const env = {
    DATABASE_URL: target.at(name),
    JWT_SECRET: TEST_JWT_SECRET,
    RATE_LIMIT_PER_MINUTE: '100000',
    RATE_LIMIT_PER_HOUR: '100000'
  }
  const start = async (): Promise<{ server: Server, origin: string }> => {
    const cwd = await scratch(t)
    const server = startServer(t, { ...env, DATA_DIR: cwd }, cwd)
    return { server, origin: `http://127.0.0.1:${await listening(server)}` }
  }
  const [a, b] = await Promise.all([start(), start()])
  for (const { server } of [a, b]) {
    t.equal(server.stderr(), '', 'started without an error')
    t.notMatch(server.stdout(), /"level":(50|60)/, 'nothing logged as an error')
  }
  const migrated = await withClient(target.at(name), (client) => client.query<{ n: number }>('select count(*)::int as n from drizzle.__drizzle_migrations'))
  t.equal(migrated.rows[0]?.n, readMigrationFiles({ migrationsFolder }).length, 'each migration applied once')

  const email = uniqueEmail()
  await json(fetch(`${b.origin}/api/v1/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: TEST_PASSWORD }) }))
  const token = (await json<{ access_token: string }>(fetch(`${b.origin}/api/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: email, password: TEST_PASSWORD })
  }))).access_token
  const create = (name: string) => json<{ id: string }>(fetch(`${b.origin}/api/v1/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ name, price: 10 })
  }))

  // A socket on A gets what is created through B.
  const onA = await connectTo(t, a.origin, { token })
  await subscribe(onA, ['items'])
  const first = await create('through B')
  const event = await onA.next()
  t.match(event, { type: 'event', name: 'item.created', data: { id: first.id } })

  // A stops; its socket is told so, and items are created meanwhile.
  a.server.kill('SIGTERM')
  t.same(await onA.closed, { code: 1001, reason: 'The server is shutting down' })
  t.equal(await a.server.exited, 0)
  const missed = [await create('while A is down 1'), await create('while A is down 2')]

  // Reconnecting to B with since: the missed ones, then live ones, each once.
  const onB = await connectTo(t, b.origin, { token, via: 'protocol' })
  await subscribe(onB, ['items'], String(event.id))
  const replayed = [await onB.next(), await onB.next()]
  t.same(replayed.map((message) => (message.data as { id: string }).id), missed.map((item) => item.id))
  const live = await create('after the reconnect')
  t.match(await onB.next(), { data: { id: live.id } })
  t.same(await onB.rest(), [], 'no duplicate')
  b.server.kill('SIGTERM')
  t.equal(await b.server.exited, 0)
})

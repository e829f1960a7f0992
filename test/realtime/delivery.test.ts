import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp, type AppOptions } from '../../src/app.js'
import { insertItem } from '../../src/items/repository.js'
import { build, freshDatabase, testConfig } from '../helper.js'
import { withClient } from '../databases.js'
import { logCapture } from '../log-capture.js'
import { connect, createItem, subscribe, user } from './helpers.js'

const onPostgres = process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== ''
const OVERLAPPING = onPostgres ? false : 'needs DATABASE_URL: on PGlite one connection serves everything, so transactions never overlap'
const SHARED = onPostgres ? false : 'needs DATABASE_URL: only a Postgres server can be shared by two instances'

/** An app on a given Postgres database, closed when the test ends. */
async function instance (t: Test, databaseUrl: string, options: AppOptions = {}, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const app = await buildApp(testConfig({ ...env, DATABASE_URL: databaseUrl }), { loadShedding: { maxEventLoopDelay: 0, maxHeapUsedBytes: 0 }, ...options })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

t.test('events are delivered in id order and none is skipped when transactions commit out of id order', { skip: OVERLAPPING }, async (t) => {
  const app = await build(t)
  const ada = await user(app)
  const socket = await connect(t, app)
  await subscribe(socket, ['items'])

  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => { release = resolve })
  let early = ''
  // The first transaction takes the lower id, then stays open while a second one commits a higher id.
  const slow = app.db.transaction(async (tx) => {
    early = (await insertItem(tx, ada.id, { name: 'committed last', price: 1 })).id
    await gate
  })
  await sleep(50)
  const late = await createItem(app, ada.token, { name: 'committed first' })
  t.same(await socket.rest(300), [], 'the higher id waits while a transaction that may hold a lower one runs')
  release()
  await slow
  const events = [await socket.next(), await socket.next()]
  t.same(events.map((event) => (event.data as { id: string }).id), [early, late.id], 'both, in id order')
  t.ok(Number(events[0]?.id) < Number(events[1]?.id))
})

t.test('a transaction that rolls back leaves no event, and does not hold the others back', async (t) => {
  const app = await build(t)
  const ada = await user(app)
  const socket = await connect(t, app)
  await subscribe(socket, ['items'])
  await t.rejects(app.db.transaction(async (tx) => {
    await insertItem(tx, ada.id, { name: 'never', price: 1 })
    throw new Error('changed my mind')
  }), /changed my mind/)
  const item = await createItem(app, ada.token)
  const event = await socket.next()
  t.match(event, { data: { id: item.id } })
  t.same(await socket.rest(), [])
})

t.test('an event written without a notification (a lost one) is delivered by the periodic poll', async (t) => {
  const app = await build(t, {}, { realtime: { pollIntervalMs: 200 } })
  const ada = await user(app)
  const socket = await connect(t, app)
  await subscribe(socket, ['items'])
  const item = await createItem(app, ada.token)
  const data = (await socket.next()).data
  // Straight into the table, as another process whose notification got lost would.
  await app.database.query("insert into events (topic, name, data) values ('items', 'item.updated', $1)", [JSON.stringify(data)])
  const started = Date.now()
  t.match(await socket.next(2_000), { name: 'item.updated', data: { id: item.id } })
  t.ok(Date.now() - started < 1_500, 'within a poll or so')
})

t.test('two instances on one database: a commit on one wakes the other through NOTIFY', { skip: SHARED }, async (t) => {
  const { databaseUrl = '' } = await freshDatabase(t)
  // No poll to speak of: only a notification can deliver in time.
  const logs = logCapture()
  const a = await instance(t, databaseUrl, { realtime: { pollIntervalMs: 3_600_000 }, logStream: logs.stream }, { LOG_LEVEL: 'info' })
  const b = await instance(t, databaseUrl, { realtime: { pollIntervalMs: 3_600_000 } })
  const ada = await user(b)
  const socket = await connect(t, a)
  await subscribe(socket, ['items'])
  const item = await createItem(b, ada.token)
  t.match(await socket.next(2_000), { name: 'item.created', data: { id: item.id } })

  // The LISTEN connection dropped (a restart of Postgres, a pooler): it comes back and catches up.
  const terminated = await withClient(databaseUrl, (client) => client.query(
    "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'catalog-api listener' and datname = current_database()"))
  t.equal(terminated.rowCount, 2, 'both listeners were cut')
  const whileAway = await createItem(b, ada.token)
  t.match(await socket.next(5_000), { data: { id: whileAway.id } }, 'caught up after reconnecting')
  const afterwards = await createItem(b, ada.token)
  t.match(await socket.next(2_000), { data: { id: afterwards.id } }, 'notified again')
  const listening = await withClient(databaseUrl, (client) => client.query(
    "select count(*)::int as n from pg_stat_activity where application_name = 'catalog-api listener' and datname = current_database()"))
  t.equal(listening.rows[0]?.n, 2, 'one listener per instance again')
  const said = logs.lines.map((line) => line.msg)
  t.equal(said.filter((msg) => msg === 'LISTEN connection lost; reconnecting').length, 1, 'the drop is logged once')
  t.equal(said.filter((msg) => msg === 'LISTEN connection back').length, 1, 'and so is the return')
})

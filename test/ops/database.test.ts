import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import Fastify from 'fastify'
import t from 'tap'
import { openDatabase, rows } from '../../src/db/client.js'
import { postgresTarget, quoteIdent, withClient } from '../databases.js'
import { build, settledPool, testConfig } from '../helper.js'

const log = Fastify({ logger: false }).log
const databaseUrl = process.env.DATABASE_URL === '' ? undefined : process.env.DATABASE_URL

t.test('GET /health/ready → 503 problem when migrations are missing', async (t) => {
  const app = await build(t)
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200)
  await app.db.execute(sql`delete from drizzle.__drizzle_migrations`)
  const res = await app.inject({ url: '/health/ready' })
  t.equal(res.statusCode, 503)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.ok(res.headers['retry-after'])
  t.match(res.json(), { status: 503, detail: /database/ })
  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200, 'liveness does not depend on the database')
})

t.test('GET /health/ready → 503 problem when Postgres is unreachable', { skip: databaseUrl === undefined && 'needs DATABASE_URL' }, async (t) => {
  const app = await build(t)
  const name = (await rows<{ name: string }>(app.db, sql`select current_database() as name`))[0]?.name ?? ''
  // Drops this test's database under the open pool: its connections are terminated, new ones refused.
  await withClient(postgresTarget(String(databaseUrl)).maintenance, (client) => client.query(`drop database ${quoteIdent(name)} with (force)`))
  const res = await app.inject({ url: '/health/ready' })
  t.equal(res.statusCode, 503)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
})

t.test('a transaction whose begin fails gives its pool client back', { skip: databaseUrl === undefined && 'needs DATABASE_URL' }, async (t) => {
  const app = await build(t, { DB_POOL_MAX: '2' })
  // An isolation level Postgres does not know makes `begin` itself fail, as a connection lost before it does.
  const failing = { isolationLevel: 'no such level' } as unknown as Parameters<typeof app.db.transaction>[1]
  for (let n = 0; n < 4; n++) await t.rejects(app.db.transaction(async () => undefined, failing))
  const pool = await settledPool(app)
  t.same(pool, { total: pool.idle, idle: pool.idle, waiting: 0, max: 2 }, 'no client stays checked out')
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'the pool still serves')
})

t.test('openDatabase on a DATA_DIR whose embedded database is open → refused with a clear message', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'catalog-lock-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const config = testConfig({ DATA_DIR: dataDir })
  const first = await openDatabase(config, log)
  try {
    await t.rejects(openDatabase(config, log), { message: /in use by another process.*PGlite serves one process only/ })
    t.ok(await first.ready(), 'the first one keeps working')
  } finally {
    await first.close()
  }
  const again = await openDatabase(config, log)
  t.ok(await again.ready(), 'free again once closed')
  await again.close()
})

t.test('openDatabase: three instances migrating one fresh Postgres database at once do not race', { skip: databaseUrl === undefined && 'needs DATABASE_URL' }, async (t) => {
  const target = postgresTarget(String(databaseUrl))
  const name = `${target.stem}_migrate_${randomBytes(4).toString('hex')}`
  await withClient(target.maintenance, (client) => client.query(`create database ${quoteIdent(name)}`))
  t.teardown(() => withClient(target.maintenance, (client) => client.query(`drop database if exists ${quoteIdent(name)} with (force)`)))
  const config = testConfig({ DATABASE_URL: target.at(name) })
  const databases = await Promise.all([openDatabase(config, log), openDatabase(config, log), openDatabase(config, log)])
  t.teardown(() => Promise.all(databases.map((database) => database.close())))
  for (const database of databases) t.ok(await database.ready())
  const [applied] = await rows<{ count: string | number }>(databases[0]!.db, sql`select count(*) as count from drizzle.__drizzle_migrations`)
  const [distinct] = await rows<{ count: string | number }>(databases[0]!.db, sql`select count(distinct hash) as count from drizzle.__drizzle_migrations`)
  t.equal(Number(applied?.count), Number(distinct?.count), 'each migration applied once')
  t.ok(Number(applied?.count) > 0)
})

t.test('openDatabase: waiting for another instance\'s migrations is not cut short by DB_STATEMENT_TIMEOUT', { skip: databaseUrl === undefined && 'needs DATABASE_URL' }, async (t) => {
  const target = postgresTarget(String(databaseUrl))
  const name = `${target.stem}_migrate_${randomBytes(4).toString('hex')}`
  await withClient(target.maintenance, (client) => client.query(`create database ${quoteIdent(name)}`))
  t.teardown(() => withClient(target.maintenance, (client) => client.query(`drop database if exists ${quoteIdent(name)} with (force)`)))
  const config = testConfig({ DATABASE_URL: target.at(name), DB_STATEMENT_TIMEOUT: '100ms' })
  // Another instance holds the migration lock for longer than the statement timeout.
  const database = await withClient(target.at(name), async (client) => {
    await client.query('select pg_advisory_lock(727001)')
    const opening = openDatabase(config, log)
    await new Promise((resolve) => setTimeout(resolve, 400))
    await client.query('select pg_advisory_unlock(727001)')
    return await opening
  })
  t.teardown(() => database.close())
  t.ok(await database.ready(), 'migrated once the lock was free')
  const [timeout] = await rows<{ statement_timeout: string }>(database.db, sql`show statement_timeout`)
  t.equal(timeout?.statement_timeout, '100ms', 'the pool keeps the configured statement timeout')
})

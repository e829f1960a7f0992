import { PGlite } from '@electric-sql/pglite'
import { eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { PGLITE_START_PARAMS } from '../../src/db/embedded.js'
import { users } from '../../src/db/schema.js'
import { authHeader, freshDatabase, login, signUp, testConfig } from '../helper.js'

const ROOT = { FIRST_SUPERUSER_EMAIL: 'Root@Example.com', FIRST_SUPERUSER_PASSWORD: 'root-password-123' }

/**
 * Starts apps one after another on the same database, like restarts: with Postgres the same URL;
 * with PGlite (one process per data directory) a copy of the previous app's data when it stopped.
 */
async function restartable (t: Test) {
  const { databaseUrl, pglite } = await freshDatabase(t)
  let data: Blob | undefined
  return async function start (env: Record<string, string>): Promise<{ app: FastifyInstance, stop: (restart?: boolean) => Promise<void> }> {
    const client = databaseUrl !== undefined ? undefined : data === undefined ? pglite : await PGlite.create({ loadDataDir: data, startParams: PGLITE_START_PARAMS })
    const app = await buildApp(
      testConfig({ ...env, ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }) }),
      { database: client === undefined ? {} : { pglite: client } }
    )
    /** Closes the app; with `restart`, keeps its data for the next start (PGlite dumps take a while). */
    const stop = async (restart = false) => {
      if (restart && client !== undefined && !client.closed) data = await client.dumpDataDir('gzip')
      await app.close()
    }
    try {
      await app.ready()
    } catch (error) {
      await stop()
      throw error
    }
    return { app, stop }
  }
}

const superusers = (app: FastifyInstance) =>
  app.db.select({ id: users.id, email: users.email, isActive: users.isActive }).from(users).where(eq(users.isSuperuser, true))

t.test('the first superuser is created at start from config, and can get the admin scope', async (t) => {
  const start = await restartable(t)
  const { app, stop } = await start(ROOT)
  t.teardown(() => stop())
  const rows = await superusers(app)
  t.equal(rows.length, 1)
  t.match(rows[0], { email: ROOT.FIRST_SUPERUSER_EMAIL, isActive: true })
  const pair = await login(app, 'root@example.com', ROOT.FIRST_SUPERUSER_PASSWORD, 'admin')
  t.equal(pair.scope, 'admin')
  t.equal((await app.inject({ url: '/api/v1/users', headers: authHeader(pair) })).statusCode, 200)
})

t.test('the first superuser is not created twice on restart, nor again when another superuser exists', async (t) => {
  const start = await restartable(t)
  const first = await start(ROOT)
  const [created] = await superusers(first.app)
  await first.stop(true)

  const second = await start(ROOT)
  t.same((await superusers(second.app)).map((row) => row.id), [created?.id], 'the same single superuser')
  await second.stop(true)

  const third = await start({ FIRST_SUPERUSER_EMAIL: 'other@example.com', FIRST_SUPERUSER_PASSWORD: 'other-password-123' })
  t.teardown(() => third.stop())
  t.equal((await superusers(third.app)).length, 1)
  t.same(await third.app.db.select().from(users).where(eq(users.email, 'other@example.com')), [])
})

t.test('the app refuses to start when FIRST_SUPERUSER_EMAIL belongs to an ordinary user', async (t) => {
  const start = await restartable(t)
  const plain = await start({})
  await signUp(plain.app, { email: 'root@example.com' })
  await plain.stop(true)
  await t.rejects(start(ROOT), /FIRST_SUPERUSER_EMAIL Root@Example\.com belongs to an existing ordinary user/)
})

t.test('without FIRST_SUPERUSER_EMAIL no superuser is made', async (t) => {
  const start = await restartable(t)
  const { app, stop } = await start({})
  t.teardown(() => stop())
  t.same(await superusers(app), [])
})

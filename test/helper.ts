import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { PGlite } from '@electric-sql/pglite'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp, type AppOptions } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { PGLITE_SNAPSHOT, postgresTarget, quoteIdent, withClient } from './databases.js'

export const TEST_JWT_SECRET = 'test-secret-that-is-at-least-32-characters-long'

/** A configuration for tests: quiet, a fixed secret, and whatever the test overrides (as environment strings). */
export function testConfig (env: Record<string, string> = {}): Config {
  return loadConfig({ LOG_LEVEL: 'silent', JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: '/nonexistent', ...env })
}

/**
 * A fresh, migrated database for one test: a copy of the PGlite snapshot in memory,
 * or, with DATABASE_URL, a new Postgres database copied from the migrated template.
 */
export async function freshDatabase (t: Test): Promise<{ databaseUrl?: string, pglite?: PGlite }> {
  const url = process.env.DATABASE_URL
  if (url === undefined || url === '') {
    const pglite = await PGlite.create({ loadDataDir: new Blob([await readFile(PGLITE_SNAPSHOT)]) })
    t.teardown(async () => { if (!pglite.closed) await pglite.close() })
    return { pglite }
  }
  const target = postgresTarget(url)
  const name = `${target.stem}_${randomBytes(6).toString('hex')}`
  await withClient(target.maintenance, (client) => client.query(`create database ${quoteIdent(name)} template ${quoteIdent(target.template)}`))
  t.teardown(() => withClient(target.maintenance, (client) => client.query(`drop database if exists ${quoteIdent(name)} with (force)`)))
  return { databaseUrl: target.at(name) }
}

/**
 * Builds the app on a fresh database; it is closed when the test ends. `register` adds routes or hooks
 * of the test's own before the app is ready (to exercise framework behaviour such as validation).
 */
export async function build (
  t: Test,
  env: Record<string, string> = {},
  options: AppOptions = {},
  register: (app: FastifyInstance) => void | Promise<void> = () => undefined
): Promise<FastifyInstance> {
  const { databaseUrl, pglite } = await freshDatabase(t)
  const config = testConfig({ ...env, ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }) })
  const app = await buildApp(config, { ...options, database: { ...options.database, ...(pglite === undefined ? {} : { pglite }) } })
  t.teardown(() => app.close())
  await register(app)
  await app.ready()
  return app
}

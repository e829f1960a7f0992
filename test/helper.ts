import { createHmac, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { PGlite } from '@electric-sql/pglite'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp, type AppOptions } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { PGLITE_START_PARAMS } from '../src/db/embedded.js'
import { proveResponses } from './contract/responses.js'
import { PGLITE_SNAPSHOT, postgresTarget, quoteIdent, withClient } from './databases.js'

export const TEST_JWT_SECRET = 'test-secret-that-is-at-least-32-characters-long'

/** A configuration for tests: quiet, a fixed secret, and whatever the test overrides (as environment strings). */
export function testConfig (env: Record<string, string> = {}): Config {
  // Per-client limits out of the way of tests making many requests; the rate-limit tests set their own.
  return loadConfig({ LOG_LEVEL: 'silent', JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: '/nonexistent', RATE_LIMIT_PER_MINUTE: '1000000', RATE_LIMIT_PER_HOUR: '1000000', ...env })
}

/**
 * A fresh, migrated database for one test: a copy of the PGlite snapshot in memory,
 * or, with DATABASE_URL, a new Postgres database copied from the migrated template.
 */
export async function freshDatabase (t: Test): Promise<{ databaseUrl?: string, pglite?: PGlite }> {
  const url = process.env.DATABASE_URL
  if (url === undefined || url === '') {
    const pglite = await PGlite.create({ loadDataDir: new Blob([await readFile(PGLITE_SNAPSHOT)]), startParams: PGLITE_START_PARAMS })
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
  const app = await buildApp(config, {
    // Tests run in parallel on busy machines, where the event loop lags: no shedding unless a test asks for it.
    loadShedding: { maxEventLoopDelay: 0, maxHeapUsedBytes: 0 },
    ...options,
    database: { ...options.database, ...(pglite === undefined ? {} : { pglite }) }
  })
  t.teardown(() => app.close())
  await register(app)
  proveResponses(app)
  await app.ready()
  return app
}

export const TEST_PASSWORD = 'correct horse battery staple'

let signUps = 0
/** A unique email for a test's user. */
export const uniqueEmail = (name = 'user') => `${name}-${process.pid}-${++signUps}-${randomBytes(3).toString('hex')}@example.com`

/** Signs a user up through the API and returns the created `User`. */
export async function signUp (app: FastifyInstance, body: { email?: string, password?: string, fullName?: string } = {}) {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/users',
    payload: { email: body.email ?? uniqueEmail(), password: body.password ?? TEST_PASSWORD, ...(body.fullName === undefined ? {} : { fullName: body.fullName }) }
  })
  if (res.statusCode !== 201) throw new Error(`sign-up failed: ${res.statusCode} ${res.body}`)
  return res.json<{ id: string, email: string, fullName: string | null, isActive: boolean, isSuperuser: boolean }>()
}

export interface TokenPair { access_token: string, token_type: string, expires_in: number, refresh_token: string, scope: string }

/** Logs in with the password grant (as a form, like Swagger UI) and returns the token response. */
export async function login (app: FastifyInstance, email: string, password = TEST_PASSWORD, scope?: string): Promise<TokenPair> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/token',
    payload: new URLSearchParams({ grant_type: 'password', username: email, password, ...(scope === undefined ? {} : { scope }) }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' }
  })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return res.json<TokenPair>()
}

export const authHeader = (token: string | TokenPair) => ({ authorization: `Bearer ${typeof token === 'string' ? token : token.access_token}` })

export const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** A JWT built by hand, so every header and claim can be wrong in its own way. */
export function jwt (payload: Record<string, unknown>, { alg = 'HS256', secret = TEST_JWT_SECRET }: { alg?: string, secret?: string } = {}) {
  const head = `${b64({ alg, typ: 'JWT' })}.${b64(payload)}`
  if (alg === 'none') return `${head}.`
  const hash = alg === 'HS512' ? 'sha512' : 'sha256'
  return `${head}.${createHmac(hash, secret).update(head).digest('base64url')}`
}

/**
 * Starts apps one after another on the same database, like restarts of one instance: with Postgres
 * the same URL; with PGlite (one process per data directory) a copy of the data the previous app left.
 */
export async function restartable (t: Test, env: Record<string, string> = {}) {
  const { databaseUrl, pglite } = await freshDatabase(t)
  let data: Blob | undefined
  return async function start (options: AppOptions = {}) {
    const client = databaseUrl !== undefined ? undefined : data === undefined ? pglite : await PGlite.create({ loadDataDir: data, startParams: PGLITE_START_PARAMS })
    const app = await buildApp(
      testConfig({ ...env, ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }) }),
      { ...options, database: client === undefined ? {} : { pglite: client } }
    )
    t.teardown(() => app.close())
    await app.ready()
    /** Stops the workers as a shutdown does, then the app, keeping the data for the next start. */
    const stop = async () => {
      await app.jobQueue.stop()
      if (client !== undefined) data = await client.dumpDataDir('gzip')
      await app.close()
    }
    return { app, stop }
  }
}

/**
 * The Postgres pool's counts once every client is back (within `timeoutMs`): background work (workers polling their
 * queues, the webhook dispatcher) holds a client for moments at a time, while a lost one never comes back.
 */
export async function settledPool (app: FastifyInstance, timeoutMs = 3_000) {
  const deadline = performance.now() + timeoutMs
  let pool = app.database.poolStats()
  while (pool.idle !== pool.total && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    pool = app.database.poolStats()
  }
  return pool
}

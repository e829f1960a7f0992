import { setTimeout as sleep } from 'node:timers/promises'
import type { PGlite } from '@electric-sql/pglite'
import { sql, type SQL } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import type { FastifyBaseLogger } from 'fastify'
import pg from 'pg'
import type { Config } from '../config.js'
import { migrationsFolder } from '../paths.js'
import { openEmbedded, type Embedded } from './embedded.js'
import { PgListener } from './listener.js'
import * as schema from './schema.js'

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>
/** A database handle or an open transaction: repositories accept either. */
export type Executor = Pick<Db, 'select' | 'insert' | 'update' | 'delete' | 'execute' | 'transaction' | '_'>

export interface PoolStats { total: number, idle: number, waiting: number, max: number }

/** Rows of a raw SQL statement. */
export interface RawResult { rows: unknown[] }

export interface Database {
  db: Db
  driver: 'postgres' | 'pglite'
  /** Resolves when the database answers and every migration is applied. */
  ready (): Promise<boolean>
  poolStats (): PoolStats
  /**
   * Raw SQL through the driver, for libraries that bring their own SQL (the job queue). With
   * parameters, one statement; without, several may follow each other, and the last one's rows return.
   */
  query (text: string, values?: unknown[]): Promise<RawResult>
  /**
   * Calls `onNotify` for each notification on `channel`, from any process on this database, and once more whenever
   * the listening connection has come back (what was sent meanwhile is lost). The returned function stops listening.
   */
  listen (channel: string, onNotify: () => void): Promise<() => Promise<void>>
  /** Wakes the listeners of `channel` in every process on this database. Outside any transaction. */
  notify (channel: string): Promise<void>
  /**
   * Runs `work` holding the lock every instance takes to change the database's schema, as migrations do: for libraries
   * that install schemas of their own (the job queue), since concurrent `CREATE … IF NOT EXISTS` race in Postgres.
   */
  whileChangingSchema<T> (work: () => Promise<T>): Promise<T>
  close (): Promise<void>
}

export interface DatabaseOptions {
  /** An already open PGlite (tests pass a copy of a migrated snapshot). */
  pglite?: PGlite
  /** The embedded database of DATA_DIR, being opened already (the server starts it before loading the rest). */
  embedded?: Promise<Embedded>
  /** How long to keep retrying the first Postgres connection. */
  connectTimeoutMs?: number
}

const casing = 'snake_case'

/** Closing twice (the app on shutdown, then a test teardown) closes once. */
function once (close: () => Promise<void>): () => Promise<void> {
  let closed: Promise<void> | undefined
  return () => (closed ??= close())
}
/** Any fixed number: the advisory lock every instance takes around migrations. */
const MIGRATION_LOCK = 727_001

async function expectedMigrations (): Promise<number> {
  const { readMigrationFiles } = await import('drizzle-orm/migrator')
  return readMigrationFiles({ migrationsFolder }).length
}

/** Rows of a raw `execute()`: both drivers return `{ rows }`; `pg` gives bigint and numeric as strings. */
export async function rows<T> (executor: Executor, query: SQL): Promise<T[]> {
  const result = await executor.execute(query) as unknown as { rows: T[] }
  return result.rows
}

/** What a transaction owes its `onCommit` callbacks: which database it runs on, and the callbacks to run. */
interface CommitScope {
  db: Db
  callbacks: Array<(db: Db) => void>
}

const commitScopes = new WeakMap<object, CommitScope>()

type Transactional = Pick<Db, 'transaction'>

/**
 * Makes `target.transaction` (the database's, or a transaction's for its savepoints) keep `onCommit` callbacks:
 * a committed transaction runs them, a committed savepoint hands them to its parent, a rollback drops them.
 */
function keepCommitCallbacks (target: Transactional, db: Db, parent?: CommitScope): void {
  const begin = target.transaction.bind(target)
  const transaction = async <T>(work: Parameters<Db['transaction']>[0], config?: Parameters<Db['transaction']>[1]): Promise<T> => {
    const scope: CommitScope = { db, callbacks: [] }
    const result = await begin(async (tx) => {
      commitScopes.set(tx, scope)
      keepCommitCallbacks(tx, db, scope)
      return await work(tx)
    }, config) as T
    if (parent === undefined) for (const callback of scope.callbacks) callback(db)
    else parent.callbacks.push(...scope.callbacks)
    return result
  }
  target.transaction = transaction as Db['transaction']
}

/**
 * Runs `callback` once the transaction `executor` belongs to has committed (Django's `on_commit`); at once when
 * `executor` is the database itself, whose statements commit as they run. Never after a rollback.
 * Callbacks run synchronously after the commit and must not throw.
 */
export function onCommit (executor: Executor, callback: (db: Db) => void): void {
  const scope = commitScopes.get(executor)
  if (scope === undefined) callback(executor as Db)
  else scope.callbacks.push(callback)
}

/**
 * Something that becomes true when a transaction commits, told to whoever listens on that database (each app listens on
 * its own): `emit` in the transaction (at once outside one); every listener of that database hears it.
 */
export interface CommitSignal<T> {
  emit: (executor: Executor, value: T) => void
  listen: (db: Db, listener: (value: T) => void) => () => void
}

export function commitSignal<T> (): CommitSignal<T> {
  const listeners = new WeakMap<Db, Set<(value: T) => void>>()
  return {
    emit: (executor, value) => {
      onCommit(executor, (db) => { for (const listener of listeners.get(db) ?? []) listener(value) })
    },
    listen: (db, listener) => {
      let set = listeners.get(db)
      if (set === undefined) listeners.set(db, set = new Set())
      set.add(listener)
      return () => { set.delete(listener) }
    }
  }
}

async function migrationsApplied (db: Db, expected: number): Promise<boolean> {
  const [row] = await rows<{ count: number | string }>(db, sql`select count(*) as count from drizzle.__drizzle_migrations`)
  return Number(row?.count) >= expected
}

export async function openDatabase (config: Config, log: FastifyBaseLogger, options: DatabaseOptions = {}): Promise<Database> {
  const expected = await expectedMigrations()
  return config.DATABASE_URL === undefined
    ? await openPglite(log, expected, options.pglite === undefined ? await (options.embedded ?? openEmbedded(config)) : { client: options.pglite })
    : await openPostgres(config, log, expected, options.connectTimeoutMs ?? 30_000)
}

async function openPostgres (config: Config, log: FastifyBaseLogger, expected: number, connectTimeoutMs: number): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: config.DATABASE_URL,
    max: config.DB_POOL_MAX,
    statement_timeout: config.DB_STATEMENT_TIMEOUT,
    // A request never waits for the database to come back: past this it is a 503 (see db/errors.ts).
    connectionTimeoutMillis: config.DB_CONNECT_TIMEOUT,
    // A peer that vanished without closing its connections (a failover, a cut network) is noticed.
    keepAlive: true,
    idleTimeoutMillis: 30_000
  })
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', (error) => log.warn({ err: error }, 'idle Postgres client failed'))
  // A checked-out client has no pool listener: its connection failing between two statements of a transaction would
  // be an uncaught 'error'. Its next statement fails instead (a 503), and the pool discards it on release.
  pool.on('connect', (client) => {
    client.on('error', (error) => log.debug({ err: error }, 'Postgres connection of a checked-out client failed'))
  })

  /** Runs `work` holding MIGRATION_LOCK on `client`; waiting for the lock, and the work, are not slow statements. */
  const holdingSchemaLock = async <T>(client: pg.PoolClient, work: () => Promise<T>): Promise<T> => {
    await client.query('set statement_timeout = 0')
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK])
    try {
      return await work()
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK])
      await client.query('reset statement_timeout')
    }
  }
  /** A client for `work`, released afterwards; one that failed is discarded rather than reused. */
  const withClient = async <T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const client = await pool.connect()
    let failed = false
    try {
      return await work(client)
    } catch (error) {
      failed = true
      throw error
    } finally {
      client.release(failed)
    }
  }

  const client = await connectWithRetry(pool, log, connectTimeoutMs)
  try {
    await holdingSchemaLock(client, () => migratePg(drizzlePg(client, { casing }), { migrationsFolder }))
  } catch (error) {
    client.release(true)
    await pool.end()
    throw error
  }
  client.release()

  const db: Db = drizzlePg(pool, { schema, casing })
  // drizzle's pooled transaction leaves its client checked out for good when `begin` fails (the connection died
  // between checkout and begin, as in an outage): the pool would shrink by one each time. Transactions run on a
  // client checked out here instead, released whatever happens (the pool discards one whose connection is dead).
  db.transaction = async (work, config) => {
    const client = await pool.connect()
    try {
      // Without `schema`, which costs some 55 µs per instance to index: transactions never use the relational `query` API.
      return await (drizzlePg(client, { casing }) as unknown as Db).transaction(work, config)
    } finally {
      client.release()
    }
  }
  keepCommitCallbacks(db, db)
  const connectionString = config.DATABASE_URL ?? ''
  const listeners = new Map<string, PgListener>()
  return {
    db,
    driver: 'postgres',
    ready: () => migrationsApplied(db, expected),
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: config.DB_POOL_MAX }),
    query: async (text, values) => {
      // Several statements without parameters come back as one result each.
      const result = await pool.query(text, values) as pg.QueryResult | pg.QueryResult[]
      return Array.isArray(result) ? { rows: result.at(-1)?.rows ?? [] } : result
    },
    listen: async (channel, onNotify) => {
      const listener = new PgListener(connectionString, channel, onNotify, log)
      listeners.set(channel, listener)
      await listener.start()
      return async () => {
        listeners.delete(channel)
        await listener.stop()
      }
    },
    notify: async (channel) => {
      // Through the listening connection when there is one: it is otherwise idle, while the pool may be busy.
      if (await listeners.get(channel)?.notify() === true) return
      await pool.query('select pg_notify($1, $2)', [channel, ''])
    },
    whileChangingSchema: (work) => withClient((locked) => holdingSchemaLock(locked, work)),
    close: once(async () => {
      await Promise.all([...listeners.values()].map((listener) => listener.stop()))
      await pool.end()
    })
  }
}

async function connectWithRetry (pool: pg.Pool, log: FastifyBaseLogger, timeoutMs: number): Promise<pg.PoolClient> {
  const deadline = Date.now() + timeoutMs
  for (let attempt = 1; ; attempt++) {
    try {
      return await pool.connect()
    } catch (error) {
      if (Date.now() >= deadline) {
        await pool.end()
        throw new Error(`could not connect to Postgres within ${timeoutMs / 1000}s: ${(error as Error).message}`)
      }
      log.warn({ attempt, reason: (error as Error).message }, 'Postgres not reachable yet, retrying')
      await sleep(Math.min(250 * 2 ** attempt, 2_000))
    }
  }
}

async function openPglite (log: FastifyBaseLogger, expected: number, { client, unlock }: { client: PGlite, unlock?: () => Promise<void> }): Promise<Database> {
  const db: Db = drizzlePglite({ client, schema, casing })
  keepCommitCallbacks(db, db)
  try {
    await migratePglite(drizzlePglite({ client, casing }), { migrationsFolder })
  } catch (error) {
    await client.close()
    await unlock?.()
    throw error
  }
  log.debug({ dataDir: client.dataDir }, 'embedded PGlite database open')
  const pglite = client
  return {
    db,
    driver: 'pglite',
    ready: () => migrationsApplied(db, expected),
    poolStats: () => ({ total: 1, idle: 1, waiting: 0, max: 1 }),
    query: async (text, values) => {
      if (values !== undefined && values.length > 0) return await pglite.query(text, values)
      // `exec` takes several statements (the extended protocol of `query` takes one).
      const results = await pglite.exec(text)
      return { rows: results.at(-1)?.rows ?? [] }
    },
    listen: async (channel, onNotify) => await pglite.listen(channel, () => onNotify()),
    notify: async (channel) => { await pglite.query('select pg_notify($1, $2)', [channel, '']) },
    // One process, one connection: nothing to race with.
    whileChangingSchema: (work) => work(),
    close: once(async () => {
      await pglite.close()
      await unlock?.()
    })
  }
}

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { projectRoot } from '../src/paths.js'

/** Where the migrated PGlite data directory is kept between `test/setup.ts` and the test files. */
export const PGLITE_SNAPSHOT = join(projectRoot, 'node_modules', '.cache', 'catalog-api', 'pglite-migrated.tar.gz')

export const pgliteSnapshotExists = () => existsSync(PGLITE_SNAPSHOT)

/** With DATABASE_URL set, its database name is the stem: `<name>_template` is migrated once, each test file copies it. */
export function postgresTarget (url: string) {
  const parsed = new URL(url)
  const stem = decodeURIComponent(parsed.pathname.slice(1)) || 'catalog_test'
  const at = (database: string) => {
    const copy = new URL(url)
    copy.pathname = `/${encodeURIComponent(database)}`
    return copy.toString()
  }
  return { stem, template: `${stem}_template`, at, maintenance: at('postgres') }
}

export const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`

export async function withClient<T> (url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

/**
 * The Postgres server for tests of several instances on one database: the suite's DATABASE_URL when set, otherwise
 * the local server (CI always has one), and why the tests skip when it cannot be reached.
 */
export async function sharedPostgres (): Promise<{ target: ReturnType<typeof postgresTarget>, skip: string | false }> {
  const url = process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== ''
    ? process.env.DATABASE_URL
    : 'postgres://postgres@127.0.0.1:5432/postgres'
  const target = postgresTarget(url)
  const reachable = await withClient(target.maintenance, () => Promise.resolve(true)).catch(() => false)
  return { target, skip: reachable ? false : `no Postgres server at ${new URL(url).host}: start one or set DATABASE_URL` }
}

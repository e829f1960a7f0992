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

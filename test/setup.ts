// Runs once before the test files: migrates a database that every test file then copies.
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { PGLITE_START_PARAMS } from '../src/db/embedded.js'
import { migrationsFolder } from '../src/paths.js'
import { PGLITE_SNAPSHOT, postgresTarget, quoteIdent, withClient } from './databases.js'

const url = process.env.DATABASE_URL
if (url === undefined || url === '') {
  const client = await PGlite.create({ startParams: PGLITE_START_PARAMS })
  await migratePglite(drizzlePglite({ client, casing: 'snake_case' }), { migrationsFolder })
  const dump = await client.dumpDataDir('gzip')
  await client.close()
  await mkdir(dirname(PGLITE_SNAPSHOT), { recursive: true })
  // Written aside and renamed, so a concurrent run never reads half a snapshot.
  const partial = `${PGLITE_SNAPSHOT}.${process.pid}`
  await writeFile(partial, Buffer.from(await dump.arrayBuffer()))
  await rename(partial, PGLITE_SNAPSHOT)
} else {
  const target = postgresTarget(url)
  await withClient(target.maintenance, async (client) => {
    const { rows } = await client.query<{ datname: string }>('select datname from pg_database where datname like $1', [`${target.stem}\\_%`])
    // Leftovers of an interrupted earlier run.
    for (const { datname } of rows) await client.query(`drop database if exists ${quoteIdent(datname)} with (force)`)
    await client.query(`create database ${quoteIdent(target.template)}`)
  })
  await withClient(target.at(target.template), async (client) => {
    await migratePg(drizzlePg(client, { casing: 'snake_case' }), { migrationsFolder })
  })
}

import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import type { Config } from '../config.js'
import { DataDirLockedError, lockDataDir } from './data-dir-lock.js'

/** The embedded database of DATA_DIR, open and locked for this process (see `openEmbedded`). */
export interface Embedded {
  client: PGlite
  /** Frees DATA_DIR for another process, once the client is closed. */
  unlock: () => Promise<void>
}

/**
 * How PGlite starts: its own settings with a buffer pool of 16 MB rather than Postgres's 128 MB, which it zeroes at each
 * start (some 0.4 s) and keeps in memory. What the pool does not hold, the operating system's file cache still does.
 */
export const PGLITE_START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB']

/**
 * Locks DATA_DIR for this process and opens its embedded database, the slowest part of starting (compiling
 * Postgres's WebAssembly, then booting it): the server starts it before loading the rest of itself.
 */
export async function openEmbedded (config: Config): Promise<Embedded> {
  const dataDir = resolve(config.DATA_DIR, 'pglite')
  await mkdir(dataDir, { recursive: true })
  let unlock: () => Promise<void>
  try {
    unlock = await lockDataDir(join(config.DATA_DIR, 'pglite.pid'))
  } catch (error) {
    if (error instanceof DataDirLockedError) {
      throw new Error(`the embedded database in ${dataDir} is in use by another process; PGlite serves one process only (set DATABASE_URL to run several instances)`)
    }
    throw error
  }
  const client = await PGlite.create({ dataDir, startParams: PGLITE_START_PARAMS }).catch(async (error: unknown) => {
    await unlock()
    throw error
  })
  return { client, unlock }
}

import { execFile } from 'node:child_process'
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Test } from 'tap'

const run = promisify(execFile)
const INSTALLED = '/usr/lib/postgresql'

/** A Postgres server of the test's own, which it may stop and start. */
export interface ThrowawayPostgres {
  /** The URL of its `postgres` database. */
  url: string
  /** Stops it (`-m fast`: sessions are ended, as a restart or failover does). */
  stop (): Promise<void>
  /** Starts it again on the same port and data. */
  start (): Promise<void>
}

/** The newest installed server's binaries, if any. */
async function serverBinaries (): Promise<string | undefined> {
  const versions = await readdir(INSTALLED).catch((): string[] => [])
  const newest = versions.filter((version) => /^\d+$/.test(version)).sort((a, b) => Number(b) - Number(a))
  for (const version of newest) {
    const bin = join(INSTALLED, version, 'bin')
    if ((await readdir(bin).catch((): string[] => [])).includes('initdb')) return bin
  }
  return undefined
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/**
 * Creates and starts a throwaway cluster under a temporary directory, on 127.0.0.1 and a free port; it is removed
 * when the test ends. `initdb` and `pg_ctl` refuse to run as root, so as root they run as the `postgres` user.
 * Resolves with the reason instead when the server binaries are not installed.
 */
export async function throwawayPostgres (t: Test): Promise<ThrowawayPostgres | string> {
  const bin = await serverBinaries()
  if (bin === undefined) return `no Postgres server binaries under ${INSTALLED}`
  const asRoot = process.getuid?.() === 0
  const command = async (name: string, args: string[]) => {
    const [file, prefix] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, name)]] : [join(bin, name), []]
    await run(file, [...prefix, ...args], { timeout: 60_000 })
  }
  const dir = await mkdtemp(join(tmpdir(), 'pg-'))
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']).catch(() => ({ stdout: '' }))
    if (stdout.trim() === '') {
      await rm(dir, { recursive: true, force: true })
      return 'running as root without a postgres user to run the server as'
    }
    const uid = Number(stdout.trim())
    await chown(dir, uid, uid)
  }
  const data = join(dir, 'data')
  const port = await freePort()
  await command('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C'])
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`
  const start = () => command('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-o', options, 'start'])
  const stop = (mode = 'fast') => command('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop'])
  await start()
  t.teardown(async () => {
    await stop('immediate').catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  })
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, start, stop: () => stop() }
}

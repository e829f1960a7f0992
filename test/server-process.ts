import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { projectRoot } from '../src/paths.js'

const SERVER = join(projectRoot, 'src', 'server.ts')
const TSX = import.meta.resolve('tsx')
/** Bounds every spawned server: a hung start fails the test instead of the run. */
const START_TIMEOUT_MS = 60_000

export interface Server {
  /** Resolves with the exit code once the process ends. */
  exited: Promise<number | null>
  stdout: () => string
  stderr: () => string
  /** Resolves when stdout has a line matching the pattern. */
  waitFor: (pattern: RegExp) => Promise<void>
  kill: (signal?: NodeJS.Signals) => void
}

/** Starts `node --import tsx src/server.ts` in an empty directory (no `.env`) with only the given variables. */
export function startServer (t: Test, env: Record<string, string>, cwd: string): Server {
  const child = spawn(process.execPath, ['--import', TSX, SERVER], {
    cwd,
    // The child records no coverage of its own: tap cannot merge a tsx child's report into the suite's.
    env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'info', _TAPJS_PROCESSINFO_COVERAGE_: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  const waiters: Array<{ pattern: RegExp, resolve: () => void }> = []
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk
    for (const waiter of waiters) if (waiter.pattern.test(out)) waiter.resolve()
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { err += chunk })
  const deadline = setTimeout(() => child.kill('SIGKILL'), START_TIMEOUT_MS)
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    clearTimeout(deadline)
    resolve(code)
  }))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  return {
    exited,
    stdout: () => out,
    stderr: () => err,
    waitFor: (pattern) => new Promise<void>((resolve, reject) => {
      if (pattern.test(out)) return resolve()
      waiters.push({ pattern, resolve })
      child.on('exit', (code) => reject(new Error(`exited (${String(code)}) before logging ${String(pattern)}:\n${out}\n${err}`)))
    }),
    kill: (signal = 'SIGTERM') => { child.kill(signal) }
  }
}

/** A temporary directory, removed when the test ends. */
export async function scratch (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'catalog-server-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** The port a started server logged that it listens on. */
export async function listening (server: Server): Promise<number> {
  await server.waitFor(/"msg":"Server listening at http:\/\/127\.0\.0\.1:\d+"/)
  return Number(/Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(server.stdout())?.[1])
}

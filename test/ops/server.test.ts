import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { projectRoot } from '../../src/paths.js'
import { TEST_JWT_SECRET } from '../helper.js'

const SERVER = join(projectRoot, 'src', 'server.ts')
const TSX = import.meta.resolve('tsx')
/** Bounds every spawned server: a hung start fails the test instead of the run. */
const START_TIMEOUT_MS = 60_000

interface Server {
  /** Resolves with the exit code once the process ends. */
  exited: Promise<number | null>
  stdout: () => string
  stderr: () => string
  /** Resolves when stdout has a line matching the pattern. */
  waitFor: (pattern: RegExp) => Promise<void>
  kill: (signal?: NodeJS.Signals) => void
}

/** Starts `node --import tsx src/server.ts` in an empty directory (no `.env`) with only the given variables. */
function startServer (t: Test, env: Record<string, string>, cwd: string): Server {
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

async function scratch (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'catalog-server-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('server: bad variables → one stderr line each and exit code 1', async (t) => {
  const cwd = await scratch(t)
  const server = startServer(t, {
    PORT: 'abc',
    ACCESS_TOKEN_TTL: '15',
    ALLOW_SIGNUP: 'maybe',
    LOG_LEVEL: 'loud',
    JWT_SECRET: 'too-short-secret',
    DATABASE_URL: 'mysql://user:pw@host/db'
  }, cwd)
  t.equal(await server.exited, 1)
  const lines = server.stderr().trim().split('\n')
  t.same(lines.map((line) => line.split(':').slice(0, 2).join(':')).sort(), [
    'config: ACCESS_TOKEN_TTL', 'config: ALLOW_SIGNUP', 'config: DATABASE_URL', 'config: JWT_SECRET', 'config: LOG_LEVEL', 'config: PORT'
  ])
  t.match(server.stderr(), 'config: ACCESS_TOKEN_TTL: must be a positive whole number with a unit')
  t.match(server.stderr(), 'config: LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "loud")')
  t.notMatch(server.stderr(), 'too-short-secret', 'secrets are not echoed')
  t.notMatch(server.stderr(), 'user:pw', 'URLs are not echoed')
  t.equal(server.stdout(), '')
})

t.test('server: NODE_ENV=production without JWT_SECRET → refuses to start', async (t) => {
  const cwd = await scratch(t)
  const server = startServer(t, { NODE_ENV: 'production', DATA_DIR: cwd }, cwd)
  t.equal(await server.exited, 1)
  t.match(server.stderr(), /^config: JWT_SECRET: is required when NODE_ENV=production/)
})

t.test('server: production without DATABASE_URL warns loudly, serves, refuses a second process on its DATA_DIR, and stops on SIGTERM', async (t) => {
  const cwd = await scratch(t)
  const env = { NODE_ENV: 'production', JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: join(cwd, 'data') }
  const server = startServer(t, env, cwd)
  await server.waitFor(/"msg":"Server listening at http:\/\/127\.0\.0\.1:\d+"/)
  t.match(server.stdout(), /"level":40,[^\n]*"msg":"!!! NODE_ENV=production without DATABASE_URL/)
  const port = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(server.stdout())?.[1]
  const res = await fetch(`http://127.0.0.1:${String(port)}/health/ready`)
  t.equal(res.status, 200)

  const second = startServer(t, env, cwd)
  t.equal(await second.exited, 1)
  t.match(second.stderr(), /could not start: the embedded database in .* is in use by another process/)

  server.kill('SIGTERM')
  t.equal(await server.exited, 0)
  t.match(server.stdout(), /"signal":"SIGTERM"[^\n]*"msg":"shutting down"/)
})

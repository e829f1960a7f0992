// What the load scripts (bench:ws, bench:import, soak) share: a server started as a child process, so that its memory
// can be read and its load is its own, with the per-client rate limits raised out of the way.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, open, readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { projectRoot } from '../paths.js'

/** A server that has not answered /health/ready by then is taken as failed to start. */
const START_TIMEOUT_MS = 60_000

/** DATABASE_URL, or exits 2 with how to set it: `script` (e.g. `npm run soak`) fills a database named `database`. */
export function requireDatabaseUrl (script: string, database: string): string {
  const url = process.env.DATABASE_URL
  if (url !== undefined && url !== '') return url
  console.error(`${script} needs DATABASE_URL: a Postgres database it may fill with test data, e.g.\n` +
    `  psql postgres://postgres@127.0.0.1:5432/postgres -c "create database ${database}"\n` +
    `  DATABASE_URL=postgres://postgres@127.0.0.1:5432/${database} ${script}`)
  process.exit(2)
}

export interface ServerProcess {
  origin: string
  pid: number
  /** Where the server's stdout and stderr (its pino log) go. */
  logFile: string
  /** The server's resident memory, in bytes, from /proc. */
  rss: () => Promise<number>
  /** The CPU time the server has used so far (user and system), in seconds, from /proc. */
  cpuSeconds: () => Promise<number>
  /** SIGTERM, then resolves once the process has exited. */
  stop: () => Promise<void>
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = 100

/** The CPU time a process has used (user and system), in seconds, from /proc/<pid>/stat. */
export async function processCpuSeconds (pid: number): Promise<number> {
  // The command name, in parentheses, may hold spaces: the fields counted from after it (utime is the 14th).
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

/** A port nobody listens on at this moment. */
async function freePort (): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const address = probe.address()
  await new Promise((resolve) => probe.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port for the server')
  return address.port
}

export interface StartOptions {
  /**
   * The program to run, relative to the project root (default the API server, `src/server.ts`): TypeScript through
   * tsx, or JavaScript built by `npm run build` (`dist/src/server.js`, as `npm start` runs it).
   */
  script?: string
  /** What answers 200 once it is ready (default `/health/ready`). */
  readyPath?: string
}

/**
 * Starts `node --import tsx src/server.ts` (or `options.script`) on 127.0.0.1 with the environment plus `env`, and
 * resolves once /health/ready answers 200. The log level defaults to warn: at info every request is logged, which
 * loads the server and the disk under a benchmark.
 */
export async function startServer (env: Record<string, string> = {}, options: StartOptions = {}): Promise<ServerProcess> {
  const port = await freePort()
  const logFile = join(await mkdtemp(join(tmpdir(), 'catalog-server-')), 'server.log')
  const log = await open(logFile, 'w')
  const script = options.script ?? 'src/server.ts'
  const child = spawn(process.execPath, [...script.endsWith('.ts') ? ['--import', 'tsx'] : [], join(projectRoot, script)], {
    cwd: projectRoot,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      JWT_SECRET: randomBytes(32).toString('hex'),
      RATE_LIMIT_PER_MINUTE: '1000000',
      RATE_LIMIT_PER_HOUR: '1000000',
      AUTH_RATE_LIMIT_PER_MINUTE: '1000000',
      ...env
    },
    stdio: ['ignore', log.fd, log.fd]
  })
  await log.close()
  let exitCode: number | null | undefined
  const exited = new Promise<void>((resolve) => child.once('exit', (code) => {
    exitCode = code
    resolve()
  }))
  const origin = `http://127.0.0.1:${port}`

  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (exitCode !== undefined) {
      throw new Error(`the server exited (${String(exitCode)}) before it was ready; its log:\n${await readFile(logFile, 'utf8')}`)
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`the server was not ready within ${START_TIMEOUT_MS / 1000} s; its log is ${logFile}`)
    }
    const ready = await fetch(`${origin}${options.readyPath ?? '/health/ready'}`).then((res) => res.ok, () => false)
    if (ready) break
    await sleep(100)
  }

  const pid = child.pid
  if (pid === undefined) throw new Error('the server has no pid')
  return {
    origin,
    pid,
    logFile,
    rss: async () => {
      const status = await readFile(`/proc/${pid}/status`, 'utf8')
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
    },
    cpuSeconds: () => processCpuSeconds(pid),
    stop: async () => {
      if (exitCode === undefined) child.kill('SIGTERM')
      await exited
    }
  }
}

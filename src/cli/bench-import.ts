// `npm run bench:import [-- --rows 100000 --timeout 300]`: starts the server (a child process, so its event loop is
// measured apart from this one's) on 127.0.0.1, against DATABASE_URL when set, else on embedded PGlite in a
// temporary data directory. Signs up, uploads an NDJSON import of `rows` rows and, until the job has finished,
// samples `GET /health/live` and `GET /api/v1/items` one request after another each; then prints the import's
// rows per second, the latency of both routes (p50, p99, max) and the server's event-loop lag over the import
// (p99 and max, from its /metrics). Exits non-zero when the import did not succeed in `timeout` seconds or a
// sampled request failed.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { startServer } from './server-process.js'
import { percentile } from './stats.js'

const { values } = parseArgs({ options: { rows: { type: 'string', default: '100000' }, timeout: { type: 'string', default: '300' } } })
const rowCount = Number(values.rows)
const timeoutMs = Number(values.timeout) * 1000
if (!Number.isInteger(rowCount) || rowCount < 1 || !Number.isInteger(timeoutMs) || timeoutMs < 1000) {
  console.error('--rows and --timeout (seconds) must be whole numbers from 1')
  process.exit(2)
}

const postgres = process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== ''
const dataDir = postgres ? undefined : await mkdtemp(join(tmpdir(), 'catalog-bench-import-'))
const server = await startServer(dataDir === undefined ? {} : { DATA_DIR: dataDir })
const { origin } = server

async function post<T> (path: string, body: unknown, form = false): Promise<T> {
  const res = await fetch(`${origin}${path}`, {
    method: 'POST',
    headers: { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json' },
    body: form ? new URLSearchParams(body as Record<string, string>) : JSON.stringify(body)
  })
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`)
  return await res.json() as T
}

interface Job { id: string, status: string, createdAt: string, finishedAt: string | null, result: { created: number, failed: number } | null }

/** The server's event-loop lag since its previous scrape (prom-client resets the histogram on each). */
async function serverLag (): Promise<{ p99: number, max: number }> {
  const text = await (await fetch(`${origin}/metrics`)).text()
  const read = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN) * 1000
  return { p99: read('nodejs_eventloop_lag_p99_seconds'), max: read('nodejs_eventloop_lag_max_seconds') }
}

/** Requests `path` one after another until `until` settles, recording each latency in ms; counts failures. */
async function sample (path: string, until: Promise<unknown>, headers: Record<string, string> = {}) {
  const latencies: number[] = []
  let failures = 0
  const state = { done: false }
  until.then(() => { state.done = true }, () => { state.done = true })
  while (!state.done) {
    const started = performance.now()
    try {
      const res = await fetch(`${origin}${path}`, { headers })
      await res.arrayBuffer()
      if (!res.ok) failures++
    } catch {
      failures++
    }
    latencies.push(performance.now() - started)
    await sleep(10)
  }
  return { latencies: latencies.sort((a, b) => a - b), failures }
}

const ms = (value: number) => `${value.toFixed(1).padStart(8)} ms`

let failed = false
try {
  const email = `bench-import-${Date.now()}@example.com`
  const password = randomBytes(12).toString('base64url')
  await post('/api/v1/users', { email, password })
  const { access_token: token } = await post<{ access_token: string }>('/api/v1/auth/token', { grant_type: 'password', username: email, password }, true)
  const auth = { authorization: `Bearer ${token}` }

  const lines = Array.from({ length: rowCount }, (_, row) => JSON.stringify({ name: `Bench ${row}`, price: (row % 1000) / 10 }))
  const file = new Blob([lines.join('\n') + '\n'], { type: 'application/x-ndjson' })
  const form = new FormData()
  form.append('file', file, 'bench.ndjson')
  console.log(`${rowCount} NDJSON rows (${(file.size / 1_048_576).toFixed(1)} MB), ${postgres ? `Postgres at ${new URL(process.env.DATABASE_URL ?? '').host}` : 'embedded PGlite'}`)

  await serverLag()
  const accepted = await fetch(`${origin}/api/v1/items/import`, { method: 'POST', headers: auth, body: form })
  if (accepted.status !== 202) throw new Error(`import refused: ${accepted.status} ${await accepted.text()}`)
  const { id } = await accepted.json() as Job

  const deadline = performance.now() + timeoutMs
  const job = (async () => {
    for (;;) {
      const res = await fetch(`${origin}/api/v1/jobs/${id}`, { headers: auth })
      const current = await res.json() as Job
      if (current.status === 'succeeded' || current.status === 'failed') return current
      if (performance.now() > deadline) throw new Error(`the import had not finished after ${values.timeout} s: ${current.status}`)
      await sleep(200)
    }
  })()
  const [done, live, list] = await Promise.all([job, sample('/health/live', job), sample('/api/v1/items?limit=20', job)])
  const lag = await serverLag()

  const seconds = (Date.parse(done.finishedAt ?? '') - Date.parse(done.createdAt)) / 1000
  failed = done.status !== 'succeeded' || done.result?.created !== rowCount || live.failures + list.failures > 0
  console.log(`import            ${done.status}, ${done.result?.created ?? 0} created in ${seconds.toFixed(1)} s: ${(rowCount / seconds).toFixed(0)} rows/s`)
  for (const [name, { latencies, failures }] of [['GET /health/live', live], ['GET /api/v1/items', list]] as const) {
    console.log(`${name.padEnd(18)}p50 ${ms(percentile(latencies, 0.5))}  p99 ${ms(percentile(latencies, 0.99))}  max ${ms(latencies.at(-1) ?? Number.NaN)}  ` +
      `${latencies.length} requests, ${failures} failed`)
  }
  console.log(`event-loop lag    p99 ${ms(lag.p99)}  max ${ms(lag.max)}  (server, over the import)${failed ? '\nFAILED' : ''}`)
} catch (error) {
  console.error(error)
  failed = true
} finally {
  await server.stop()
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
}
if (failed) process.exitCode = 1

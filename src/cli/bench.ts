// `npm run bench [-- --rounds 3 --duration 6 --connections 50 --items 10000 --peer name=url …]`: the API against its
// floor, in one run. Starts the API and a bare Fastify + pg server (src/cli/bench-baseline.ts: the same SQL, nothing
// else) as child processes on 127.0.0.1 against DATABASE_URL, seeds a user and `items` items, then loads each route on
// each server with wrk (1 thread, `connections` connections, `duration` seconds), the servers interleaved route by
// route over `rounds` rounds after a warm-up (the written tables vacuumed after each run of writes), and prints the
// median req/s, p50 and p99 of each, the CPU each server and Postgres spent per request, the API's ratio to the floor
// (and to each `--peer`: another server of these routes on the same database, sharing JWT_SECRET), and the API's
// largest RSS under load. Exits non-zero when any request failed or answered 4xx/5xx.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { hashPassword } from '../auth/passwords.js'
import { processCpuSeconds, requireDatabaseUrl, startServer, type ServerProcess } from './server-process.js'

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '6' },
    connections: { type: 'string', default: '50' },
    items: { type: 'string', default: '10000' },
    warmup: { type: 'string', default: '2' },
    peer: { type: 'string', multiple: true, default: [] }
  }
})
function whole (name: string, text: string): number {
  const value = Number(text)
  if (Number.isInteger(value) && value >= 1) return value
  console.error(`--${name} must be a whole number from 1`)
  process.exit(2)
}
const rounds = whole('rounds', values.rounds)
const duration = whole('duration', values.duration)
const connections = whole('connections', values.connections)
const itemCount = whole('items', values.items)
const warmup = whole('warmup', values.warmup)
const peers = values.peer.map((spec) => {
  const [name = '', origin = ''] = spec.split(/=(.*)/s)
  if (name === '' || !/^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?$/.test(origin)) {
    console.error(`--peer ${spec}: expected name=http://127.0.0.1:<port> (peers run on this machine)`)
    process.exit(2)
  }
  return { name, origin, cpuSeconds: async () => Number.NaN }
})
const databaseUrl = requireDatabaseUrl('npm run bench', 'itemsbench')

/** Runs a command to its end; resolves with its stdout, rejects with its stderr when it fails. */
function run (command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString() })
    child.once('error', reject)
    child.once('close', (code) => { code === 0 ? resolve(out) : reject(new Error(`${command} exited ${String(code)}: ${err.trim()}`)) })
  })
}

/** wrk from Debian's package, installed when missing (as CI does). */
async function ensureWrk (): Promise<void> {
  if (await run('wrk', ['--version']).then(() => true, (error: NodeJS.ErrnoException) => error.code !== 'ENOENT')) return
  console.log('wrk is missing: installing Debian\'s package')
  await run('apt-get', ['install', '-y', '--no-install-recommends', 'wrk']).catch(async () => {
    await run('apt-get', ['update', '-qq'])
    await run('apt-get', ['install', '-y', '--no-install-recommends', 'wrk'])
  })
}

interface Route {
  name: string
  path: string
  method?: 'POST'
  body?: string
  headers?: Record<string, string>
}

interface Sample { rps: number, p50: number, p99: number, failed: number, cpu: number, postgresCpu: number }

/** The CPU time of each Postgres process on this machine (none when the server runs elsewhere). */
async function postgresCpu (): Promise<Map<number, number>> {
  const found = new Map<number, number>()
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    const seconds = await readFile(`/proc/${pid}/comm`, 'utf8')
      .then((name) => name.trim() === 'postgres' ? processCpuSeconds(pid) : undefined, () => undefined)
    if (seconds !== undefined) found.set(pid, seconds)
  }
  return found
}

/** CPU seconds Postgres spent between two readings: a process started meanwhile (a new connection) counts whole. */
function postgresSpent (before: Map<number, number>, after: Map<number, number>): number {
  let spent = 0
  for (const [pid, seconds] of after) spent += seconds - (before.get(pid) ?? 0)
  return spent
}

const luaString = (text: string) => `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`

/** A wrk script: the request of `route`, and a summary line of JSON when done (latencies in microseconds). */
function wrkScript (route: Route): string {
  return [
    route.method === undefined ? '' : `wrk.method = ${luaString(route.method)}`,
    route.body === undefined ? '' : `wrk.body = ${luaString(route.body)}`,
    ...Object.entries(route.headers ?? {}).map(([name, value]) => `wrk.headers[${luaString(name)}] = ${luaString(value)}`),
    'done = function (summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'\\n{"requests":%d,"duration":%d,"failed":%d,"p50":%d,"p99":%d}\\n\',',
    '    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(99)))',
    'end'
  ].join('\n')
}

/** Loads one route of one server; besides what wrk saw, the CPU time the server and Postgres spent per request. */
async function load (target: Target, route: Route, script: string, seconds: number): Promise<Sample> {
  const [cpuBefore, postgresBefore] = [await target.cpuSeconds(), await postgresCpu()]
  const output = await run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '-s', script, `${target.origin}${route.path}`])
  const [cpuAfter, postgresAfter] = [await target.cpuSeconds(), await postgresCpu()]
  const summary = JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as { requests: number, duration: number, failed: number, p50: number, p99: number }
  const perRequest = (spent: number) => spent / Math.max(1, summary.requests) * 1e6
  return {
    rps: summary.requests / (summary.duration / 1e6),
    p50: summary.p50 / 1000,
    p99: summary.p99 / 1000,
    failed: summary.failed,
    cpu: perRequest(cpuAfter - cpuBefore),
    postgresCpu: perRequest(postgresSpent(postgresBefore, postgresAfter))
  }
}

interface Target {
  name: string
  origin: string
  /** CPU seconds the server has used; NaN for a peer whose process is not ours. */
  cpuSeconds: () => Promise<number>
}

const median = (numbers: number[]) => {
  const sorted = [...numbers].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

await ensureWrk()
// The servers run as `npm start` runs the API: compiled, without a TypeScript loader (which holds some 60 MB).
await run('npm', ['run', '--silent', 'build'])
const secret = process.env.JWT_SECRET ?? randomBytes(32).toString('hex')
const servers: ServerProcess[] = []
let db: pg.Client | undefined
let failed = false
try {
  const api = await startServer({ JWT_SECRET: secret }, { script: 'dist/src/server.js' })
  servers.push(api)
  const floor = await startServer({}, { script: 'dist/src/cli/bench-baseline.js', readyPath: '/health/live' })
  servers.push(floor)

  db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  const email = `bench-${Date.now()}-${randomBytes(3).toString('hex')}@example.com`
  const password = randomBytes(12).toString('base64url')
  // Earlier runs' users go, with their items; then a user and items of distinct ages, as a list would meet them.
  await db.query("delete from users where email like 'bench-%@example.com'")
  const user = await db.query<{ id: string }>('insert into users (id, email, password_hash) values (gen_random_uuid(), $1, $2) returning id',
    [email, await hashPassword(password)])
  const userId = user.rows[0]?.id ?? ''
  const seeded = await db.query<{ id: string }>(`
    insert into items (id, owner_id, name, description, price, tags, created_at, updated_at)
    select gen_random_uuid(), $1, 'Bench item ' || g, 'Seeded by npm run bench', (g % 500) / 10.0, array['bench'],
      now() - g * interval '1 second', now() - g * interval '1 second'
    from generate_series(1, $2::int) as g
    returning id`, [userId, itemCount])
  const itemId = seeded.rows[Math.floor(seeded.rows.length / 2)]?.id ?? ''
  const database = db
  // After each run of writes: the next server's run then meets neither an autovacuum of these rows nor stale statistics.
  const settle = async (route: Route) => { if (route.method === 'POST') await database.query('vacuum (analyze) items, events') }
  await database.query('vacuum (analyze) items')

  const login = await fetch(`${api.origin}/api/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: email, password })
  })
  if (!login.ok) throw new Error(`login failed: ${login.status} ${await login.text()}`)
  const { access_token: token } = await login.json() as { access_token: string }

  const routes: Route[] = [
    { name: 'GET /health/live', path: '/health/live' },
    { name: 'GET /api/v1/items/{id}', path: `/api/v1/items/${itemId}` },
    { name: 'GET /api/v1/items?limit=20', path: '/api/v1/items?limit=20' },
    {
      name: 'POST /api/v1/items',
      path: '/api/v1/items',
      method: 'POST',
      body: JSON.stringify({ name: 'Bench post', description: 'Created by npm run bench', price: 19.99, tags: ['bench'] }),
      // The floor has no auth: it is told the owner.
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-owner-id': userId }
    }
  ]
  const targets: Target[] = [
    { name: 'catalog-api', origin: api.origin, cpuSeconds: api.cpuSeconds },
    { name: 'floor', origin: floor.origin, cpuSeconds: floor.cpuSeconds },
    ...peers
  ]
  const scripts = join(await mkdtemp(join(tmpdir(), 'catalog-bench-')), 'route')
  await Promise.all(routes.map((route, index) => writeFile(`${scripts}-${index}.lua`, wrkScript(route))))

  console.log(`wrk -t1 -c${connections}, ${duration} s per route and server, ${rounds} rounds after a ${warmup} s warm-up; ` +
    `Postgres, ${itemCount} seeded items`)
  for (const [index, route] of routes.entries()) {
    for (const target of targets) {
      await load(target, route, `${scripts}-${index}.lua`, warmup)
      await settle(route)
    }
  }
  const samples = new Map<string, Sample[]>()
  let apiRss = 0
  for (let round = 0; round < rounds; round++) {
    for (const [index, route] of routes.entries()) {
      for (const target of targets) {
        const sampling = target.name === 'catalog-api'
          ? setInterval(() => { api.rss().then((rss) => { apiRss = Math.max(apiRss, rss) }, () => undefined) }, 250)
          : undefined
        const sample = await load(target, route, `${scripts}-${index}.lua`, duration)
        clearInterval(sampling)
        await settle(route)
        if (sample.failed > 0) {
          failed = true
          console.error(`${route.name} on ${target.name}: ${sample.failed} requests failed or answered 4xx/5xx`)
        }
        const key = `${route.name}\n${target.name}`
        samples.set(key, [...(samples.get(key) ?? []), sample])
      }
    }
  }

  const fixed = (value: number, digits = 1) => value.toFixed(digits)
  console.log(`\n${'route'.padEnd(28)}${'server'.padEnd(14)}${'req/s'.padStart(8)}${'p50 ms'.padStart(8)}${'p99 ms'.padStart(8)}` +
    `${'CPU µs'.padStart(8)}${'PG µs'.padStart(8)}  API ×`)
  for (const route of routes) {
    const medians = targets.map((target) => {
      const runs = samples.get(`${route.name}\n${target.name}`) ?? []
      const of = (field: keyof Sample) => median(runs.map((sample) => sample[field]))
      return { target, rps: of('rps'), p50: of('p50'), p99: of('p99'), cpu: of('cpu'), postgresCpu: of('postgresCpu') }
    })
    const apiRps = medians[0]?.rps ?? Number.NaN
    for (const [index, { target, rps, p50, p99, cpu, postgresCpu }] of medians.entries()) {
      const ratio = index === 0 ? '' : `  ${fixed(apiRps / rps, 2)}`
      console.log(`${(index === 0 ? route.name : '').padEnd(28)}${target.name.padEnd(14)}${fixed(rps, 0).padStart(8)}${fixed(p50).padStart(8)}` +
        `${fixed(p99).padStart(8)}${(Number.isNaN(cpu) ? '-' : fixed(cpu, 0)).padStart(8)}${fixed(postgresCpu, 0).padStart(8)}${ratio}`)
    }
  }
  console.log(`\nAPI resident memory under load: at most ${(apiRss / 1024 / 1024).toFixed(0)} MB`)
} catch (error) {
  console.error(error)
  failed = true
} finally {
  await db?.end()
  await Promise.all(servers.map((server) => server.stop()))
}
if (failed) process.exitCode = 1

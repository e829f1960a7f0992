// `npm run bench [-- --duration 10 --connections 10]`: starts the server on 127.0.0.1 (a free port) against
// DATABASE_URL, seeds a user, a token and 1,000 items, then loads three routes with autocannon and prints
// requests per second and p99 latency. Exits non-zero when any request failed or answered other than 2xx
// (autocannon itself exits 0 either way). Per-client rate limits are raised out of the way.
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { sql } from 'drizzle-orm'
import { buildApp } from '../app.js'
import { hashPassword } from '../auth/passwords.js'
import { ConfigError, loadConfig } from '../config.js'
import { insertUser } from '../users/repository.js'
import { requireDatabaseUrl } from './server-process.js'

interface BenchOptions {
  url: string
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
  connections: number
  duration: number
}

interface BenchResult {
  requests: { average: number, total: number }
  latency: { p50: number, p99: number }
  errors: number
  timeouts: number
  non2xx: number
}

// autocannon ships no type declarations: the options and result fields used here are typed above.
const autocannon = createRequire(import.meta.url)('autocannon') as (options: BenchOptions) => Promise<BenchResult>

const { values } = parseArgs({ options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '10' } } })
const duration = Number(values.duration)
const connections = Number(values.connections)
if (!Number.isInteger(duration) || duration < 1 || !Number.isInteger(connections) || connections < 1) {
  console.error('--duration (seconds) and --connections must be whole numbers from 1')
  process.exit(2)
}

requireDatabaseUrl('npm run bench', 'itemsbench')

let config
try {
  config = loadConfig({
    ...process.env,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    JWT_SECRET: process.env.JWT_SECRET ?? randomBytes(32).toString('hex'),
    RATE_LIMIT_PER_MINUTE: '1000000',
    RATE_LIMIT_PER_HOUR: '1000000'
  })
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(error.message)
  process.exit(2)
}

const app = await buildApp(config)
let failed = false
try {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const origin = `http://127.0.0.1:${port}`

  const email = `bench-${Date.now()}-${randomBytes(3).toString('hex')}@example.com`
  const password = randomBytes(12).toString('base64url')
  const user = await insertUser(app.db, { email, passwordHash: await hashPassword(password) })
  const login = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'password', username: email, password }).toString()
  })
  if (login.statusCode !== 200) throw new Error(`login failed: ${login.statusCode} ${login.body}`)
  const token = login.json<{ access_token: string }>().access_token
  const seeded = await app.db.execute(sql`
    insert into items (id, owner_id, name, description, price, tags)
    select gen_random_uuid(), ${user.id}, 'Bench item ' || g, 'Seeded by npm run bench', (g % 500) / 10.0, array['bench']
    from generate_series(1, 1000) as g
    returning id`) as unknown as { rows: Array<{ id: string }> }
  const itemId = seeded.rows[0]?.id
  if (itemId === undefined) throw new Error('seeding returned no item')

  const runs: Array<[string, Omit<BenchOptions, 'connections' | 'duration'>]> = [
    ['GET /api/v1/items/{id}', { url: `${origin}/api/v1/items/${itemId}` }],
    ['GET /api/v1/items?limit=20', { url: `${origin}/api/v1/items?limit=20` }],
    ['POST /api/v1/items', {
      url: `${origin}/api/v1/items`,
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Bench post', price: 19.99, tags: ['bench'] })
    }]
  ]
  console.log(`${connections} connections, ${duration} s per route, ${app.database.driver}`)
  for (const [name, options] of runs) {
    const result = await autocannon({ ...options, connections, duration })
    const ok = result.errors === 0 && result.timeouts === 0 && result.non2xx === 0
    failed ||= !ok
    console.log(`${name.padEnd(28)} ${result.requests.average.toFixed(0).padStart(7)} req/s  p50 ${String(result.latency.p50).padStart(4)} ms  ` +
      `p99 ${String(result.latency.p99).padStart(4)} ms  ${result.requests.total} requests, ${result.errors} errors, ` +
      `${result.timeouts} timeouts, ${result.non2xx} non-2xx${ok ? '' : '  FAILED'}`)
  }
} catch (error) {
  console.error(error)
  failed = true
} finally {
  await app.close()
}
if (failed) process.exitCode = 1

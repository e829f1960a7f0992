// `npm run bench:ws [-- --subscribers 1000 --rate 10 --duration 10 --idle 10000]`: starts the server (a child process,
// so its memory can be read) on 127.0.0.1 against DATABASE_URL, opens `subscribers` WebSockets on the topic `items`,
// creates items at `rate` a second for `duration` seconds, and prints the latency from each write's request to each
// subscriber's receipt (p50, p99, max) and whether every subscriber got every event. Then it opens `idle` more sockets
// and prints how much they added to the server's RSS, per 1,000. Exits non-zero when an event was missed.
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { percentile } from './stats.js'
import { requireDatabaseUrl, startServer } from './server-process.js'

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '10' },
    duration: { type: 'string', default: '10' },
    idle: { type: 'string', default: '10000' }
  }
})
const subscribers = Number(values.subscribers)
const rate = Number(values.rate)
const duration = Number(values.duration)
const idle = Number(values.idle)
if (![subscribers, rate, duration, idle].every((value) => Number.isInteger(value) && value >= 0) || rate < 1 || duration < 1) {
  console.error('--subscribers, --rate (writes a second), --duration (seconds) and --idle (sockets) must be whole numbers; rate and duration from 1')
  process.exit(2)
}
const databaseUrl = requireDatabaseUrl('npm run bench:ws', 'wsbench')

const server = await startServer()
const origin = server.origin
const wsUrl = `${origin.replace('http', 'ws')}/api/v1/ws`

async function post<T> (path: string, body: unknown, headers: Record<string, string> = {}, form = false): Promise<T> {
  const res = await fetch(`${origin}${path}`, {
    method: 'POST',
    headers: { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json', ...headers },
    body: form ? new URLSearchParams(body as Record<string, string>) : JSON.stringify(body)
  })
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`)
  return await res.json() as T
}

/** Opens `count` sockets following `items`, a hundred at a time; `onEvent` gets each event's item name. */
async function openSockets (count: number, onEvent?: (socket: number, name: string) => void): Promise<WebSocket[]> {
  const sockets: WebSocket[] = []
  for (let start = 0; start < count; start += 100) {
    await Promise.all(Array.from({ length: Math.min(100, count - start) }, async (_, offset) => {
      const index = start + offset
      // The client shares the machine with the server: it reads as little of each message as it needs.
      const socket = new WebSocket(wsUrl, { skipUTF8Validation: true })
      sockets.push(socket)
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        socket.on('message', (data: Buffer) => {
          const text = data.toString('latin1')
          if (text.startsWith('{"type":"subscribed"')) resolve()
          else if (text.startsWith('{"type":"event"')) onEvent?.(index, /"name":"(bench \d+)"/.exec(text)?.[1] ?? '')
        })
        socket.once('open', () => socket.send(JSON.stringify({ type: 'subscribe', topics: ['items'] })))
      })
    }))
  }
  return sockets
}

/** The server's own view: how long its events waited from commit to their sending, from its /metrics histogram. */
async function serverLag (): Promise<string> {
  const text = await (await fetch(`${origin}/metrics`)).text()
  const buckets = [...text.matchAll(/^realtime_delivery_lag_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map(([, le = '', n = '0']) => [Number(le), Number(n)] as const)
  const total = buckets.at(-1)?.[1] ?? 0
  const bound = (p: number) => buckets.find(([, n]) => n >= total * p)?.[0] ?? Number.NaN
  return `${total} events; p50 ≤ ${bound(0.5) * 1000} ms, p99 ≤ ${bound(0.99) * 1000} ms`
}

const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MB`

let failed = false
try {
  const email = `bench-ws-${Date.now()}@example.com`
  const password = randomBytes(12).toString('base64url')
  await post('/api/v1/users', { email, password })
  const { access_token: token } = await post<{ access_token: string }>('/api/v1/auth/token', { grant_type: 'password', username: email, password }, {}, true)

  const sentAt = new Map<string, number>()
  const latencies: number[] = []
  const received = new Array<number>(subscribers).fill(0)
  const sockets = await openSockets(subscribers, (socket, name) => {
    const sent = sentAt.get(name)
    if (sent === undefined) return
    latencies.push(performance.now() - sent)
    received[socket] = (received[socket] ?? 0) + 1
  })
  console.log(`${subscribers} subscribers on items, ${rate} writes a second for ${duration} s, on ${new URL(databaseUrl).host}`)

  const writes = rate * duration
  const started = performance.now()
  const pending: Array<Promise<unknown>> = []
  for (let write = 0; write < writes; write++) {
    // A steady rate: each write at its own time, whatever the previous one took.
    const due = started + write * 1000 / rate
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
    const name = `bench ${write}`
    sentAt.set(name, performance.now())
    pending.push(post('/api/v1/items', { name, price: 1 }, { authorization: `Bearer ${token}` }))
  }
  await Promise.all(pending)
  for (let waited = 0; latencies.length < writes * subscribers && waited < 5_000; waited += 50) await sleep(50)

  const sorted = [...latencies].sort((a, b) => a - b)
  const complete = received.filter((count) => count === writes).length
  failed = complete !== subscribers
  console.log(`events received   ${latencies.length} of ${writes * subscribers}; ${complete} of ${subscribers} subscribers got all ${writes}${failed ? '  FAILED' : ''}`)
  console.log(`write → receipt   p50 ${percentile(sorted, 0.5).toFixed(1)} ms  p99 ${percentile(sorted, 0.99).toFixed(1)} ms  max ${(sorted.at(-1) ?? Number.NaN).toFixed(1)} ms`)
  console.log(`commit → send     (server) ${await serverLag()}`)
  for (const socket of sockets) socket.terminate()

  if (idle > 0) {
    await sleep(2_000)
    const before = await server.rss()
    const idleSockets = await openSockets(idle)
    await sleep(2_000)
    const after = await server.rss()
    console.log(`idle sockets      ${idle}: server RSS ${mb(before)} → ${mb(after)}, ${mb((after - before) / idle * 1000)} per 1,000 (${((after - before) / idle / 1024).toFixed(1)} KB a socket)`)
    for (const socket of idleSockets) socket.terminate()
  }
} catch (error) {
  console.error(error)
  failed = true
} finally {
  await server.stop()
}
if (failed) process.exitCode = 1

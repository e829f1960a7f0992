import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { build } from '../helper.js'

t.test('load shedding: a failing pressure check → every route answers 503 problem with Retry-After', async (t) => {
  const app = await build(t, {}, { loadShedding: { healthCheck: async () => false, healthCheckInterval: 60_000, sustainMs: 0 } })
  for (const url of ['/', '/health/ready', '/no/such/route']) {
    const res = await app.inject({ url, headers: { 'x-request-id': 'shed-1' } })
    t.equal(res.statusCode, 503, url)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.equal(res.headers['retry-after'], '5')
    t.equal(res.headers['x-request-id'], 'shed-1')
    t.match(res.json(), { status: 503, type: 'urn:catalog-api:problem:service-unavailable', detail: /overloaded/ })
  }
})

t.test('load shedding: GET /metrics and GET /health/live stay available under pressure', async (t) => {
  const app = await build(t, {}, { loadShedding: { healthCheck: async () => false, healthCheckInterval: 60_000, sustainMs: 0 } })
  const res = await app.inject({ url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.body, 'http_requests_total')
  const live = await app.inject({ url: '/health/live' })
  t.equal(live.statusCode, 200, 'an overloaded process is still alive')
  t.same(live.json(), { status: 'ok' })
})

t.test('load shedding: heap above the threshold → 503 once sampled, and no shedding without pressure', async (t) => {
  // Two samples after start, so the second covers an idle event loop rather than the app's start.
  const healthy = await build(t, {}, { loadShedding: { sampleInterval: 100 } })
  await sleep(250)
  t.equal((await healthy.inject({ url: '/health/live' })).statusCode, 200, 'the default thresholds are not reached by a test')

  // Only the heap check (0 disables the event loop one); any heap is over 1 byte once sampled.
  const app = await build(t, {}, { loadShedding: { maxHeapUsedBytes: 1, maxEventLoopDelay: 0, sampleInterval: 100, sustainMs: 0 } })
  let res = await app.inject({ url: '/' })
  for (let attempt = 0; attempt < 50 && res.statusCode !== 503; attempt++) {
    await sleep(20)
    res = await app.inject({ url: '/' })
  }
  t.equal(res.statusCode, 503)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.headers['retry-after'], '5')
})

t.test('load shedding: requests pass until pressure has lasted sustainMs, then are shed', async (t) => {
  const app = await build(t, {}, { loadShedding: { healthCheck: async () => false, healthCheckInterval: 60_000, sustainMs: 300 } })
  const started = Date.now()
  t.equal((await app.inject({ url: '/' })).statusCode, 200, 'the first request under pressure passes')
  let res = await app.inject({ url: '/' })
  for (let attempt = 0; attempt < 100 && res.statusCode !== 503; attempt++) {
    await sleep(20)
    res = await app.inject({ url: '/' })
  }
  t.equal(res.statusCode, 503)
  t.ok(Date.now() - started >= 300, 'not before the pressure lasted sustainMs')
})

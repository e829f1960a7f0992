import t from 'tap'
import { UNMATCHED_ROUTE } from '../../src/plugins/metrics.js'
import { build } from '../helper.js'

t.test('GET /metrics → Prometheus text with requests by route pattern and status, DB pool and process metrics', async (t) => {
  const app = await build(t, {}, {}, (app) => {
    app.get('/test/things/:id', async () => ({ ok: true }))
  })
  await app.inject({ url: '/health/live' })
  await app.inject({ url: '/health/live' })
  await app.inject({ url: '/test/things/secret-id-12345' })
  await app.inject({ url: '/no/such/route-67890' })
  await app.inject({ method: 'DELETE', url: '/health/live' })

  const res = await app.inject({ url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  const text = res.body
  t.match(text, 'http_requests_total{method="GET",route="/health/live",status_code="200"} 2')
  t.match(text, 'http_requests_total{method="GET",route="/test/things/:id",status_code="200"} 1')
  t.match(text, `http_requests_total{method="GET",route="${UNMATCHED_ROUTE}",status_code="404"} 1`)
  t.match(text, `http_requests_total{method="DELETE",route="${UNMATCHED_ROUTE}",status_code="405"} 1`)
  t.match(text, /http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/health\/live",status_code="200"\} \d/)
  t.match(text, 'http_request_duration_seconds_count{method="GET",route="/health/live",status_code="200"} 2')
  t.notMatch(text, 'secret-id-12345', 'no raw URL in labels')
  t.notMatch(text, 'route-67890', 'no raw URL in labels')
  t.match(text, /db_pool_clients\{state="total"\} \d+/)
  t.match(text, /db_pool_clients\{state="idle"\} \d+/)
  t.match(text, /db_pool_clients\{state="waiting"\} \d+/)
  t.match(text, /db_pool_max_clients \d+/)
  t.match(text, /process_cpu_user_seconds_total \d/)
  t.match(text, /nodejs_eventloop_lag_seconds \d/)
  t.match(text, /nodejs_eventloop_lag_p99_seconds \d/)
})

t.test('GET /metrics: several apps in one process keep separate registries', async (t) => {
  const first = await build(t)
  const second = await build(t)
  await first.inject({ url: '/health/live' })
  t.match((await first.inject({ url: '/metrics' })).body, 'route="/health/live",status_code="200"} 1')
  t.notMatch((await second.inject({ url: '/metrics' })).body, 'route="/health/live"')
  t.not(first.metrics, second.metrics)
})

t.test('GET /metrics is documented as getMetrics (tag service, text/plain)', async (t) => {
  const app = await build(t)
  type Operation = { operationId?: string, tags?: string[], responses: Record<string, { content?: Record<string, unknown> }> }
  const document = (await app.inject({ url: '/openapi.json' })).json<{ paths: Record<string, Record<string, Operation>> }>()
  const operation = document.paths['/metrics']?.get
  t.equal(operation?.operationId, 'getMetrics')
  t.same(operation?.tags, ['service'])
  t.ok(operation?.responses['200']?.content?.['text/plain'])
})

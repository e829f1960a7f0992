import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { getMetrics } from '../../schemas/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Prometheus registry: plugins add their own collectors to it. */
    metrics: Registry
  }
}

/** The route label of requests no route matched (404, 405): raw URLs would make the label set unbounded. */
export const UNMATCHED_ROUTE = 'unmatched'

const LABELS = ['method', 'route', 'status_code'] as const

/**
 * A Prometheus registry per app (tests build many apps in one process), with default process
 * metrics, request count and latency by route pattern, and the database pool read on scrape.
 * Register it early, so its hook sees the routes of every later plugin.
 */
export default fp(async function metrics (app: FastifyInstance) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from receiving a request to sending its response',
    labelNames: LABELS,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry]
  })
  // The histogram counts every request already: the counter is read from it on scrape, so a request costs one observation.
  registry.registerMetric(new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered',
    labelNames: LABELS,
    registers: [],
    async collect () {
      this.reset()
      for (const { metricName, labels, value } of (await duration.get()).values) {
        if (metricName === 'http_request_duration_seconds_count') this.inc(labels, value)
      }
    }
  }))

  // Read on each scrape; `registers: []` keeps them off prom-client's global registry.
  registry.registerMetric(new Gauge({
    name: 'db_pool_clients',
    help: 'Database connections by state (PGlite: its one connection)',
    labelNames: ['state'],
    registers: [],
    collect () {
      const stats = app.database.poolStats()
      this.set({ state: 'total' }, stats.total)
      this.set({ state: 'idle' }, stats.idle)
      this.set({ state: 'waiting' }, stats.waiting)
    }
  }))
  registry.registerMetric(new Gauge({
    name: 'db_pool_max_clients',
    help: 'Largest number of database connections the pool opens',
    registers: [],
    collect () { this.set(app.database.poolStats().max) }
  }))

  app.decorate('metrics', registry)

  app.addHook('onResponse', (request, reply, done) => {
    duration.observe({ method: request.method, route: request.routeOptions.url ?? UNMATCHED_ROUTE, status_code: reply.statusCode }, reply.elapsedTime / 1000)
    done()
  })
}, { name: 'metrics', dependencies: ['db'] })

/** `GET /metrics`; registered after the docs plugin so that it is documented. */
export async function metricsRoute (app: FastifyInstance): Promise<void> {
  app.get('/metrics', { schema: getMetrics, config: { rateLimit: false, loadShedding: false } }, async (_request, reply) =>
    reply.type(app.metrics.contentType).send(await app.metrics.metrics()))
}

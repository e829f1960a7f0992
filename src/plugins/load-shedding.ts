import { getHeapStatistics } from 'node:v8'
import underPressure, { type FastifyUnderPressureOptions } from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { serviceUnavailable } from '../lib/problem.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false` keeps a route answering under pressure (probes and metrics must stay observable). */
    loadShedding?: boolean
  }
}

/** Thresholds and checks, overridable (tests force pressure with them). */
export type LoadSheddingOptions = Pick<FastifyUnderPressureOptions,
  'maxEventLoopDelay' | 'maxHeapUsedBytes' | 'maxRssBytes' | 'maxEventLoopUtilization' | 'sampleInterval' | 'healthCheck' | 'healthCheckInterval'>

const RETRY_AFTER_SECONDS = 5
/** At most one warning per interval: logging every shed request would add to the load. */
const WARN_INTERVAL_MS = 10_000

/**
 * Sheds load with 503 problems (and `Retry-After`) when the event loop lags by more than a
 * second or the heap nears V8's limit, instead of queueing requests until they time out.
 */
export default fp(async function loadShedding (app: FastifyInstance, { options = {} }: { options?: LoadSheddingOptions }) {
  let warnedAt = 0
  await app.register(underPressure, {
    maxEventLoopDelay: 1_000,
    maxHeapUsedBytes: Math.floor(getHeapStatistics().heap_size_limit * 0.9),
    ...options,
    // Thrown from an async handler, the problem goes through our error handler like any other.
    pressureHandler: async (request, _reply, type, value) => {
      if (request.routeOptions.config.loadShedding === false) return
      if (Date.now() - warnedAt > WARN_INTERVAL_MS) {
        warnedAt = Date.now()
        app.log.warn({ type, value }, 'under pressure: shedding load')
      }
      throw serviceUnavailable('The server is overloaded; retry shortly', RETRY_AFTER_SECONDS)
    }
  })
}, { name: 'load-shedding', dependencies: ['errors'] })

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
type Thresholds = Pick<FastifyUnderPressureOptions,
  'maxEventLoopDelay' | 'maxHeapUsedBytes' | 'maxRssBytes' | 'maxEventLoopUtilization' | 'sampleInterval' | 'healthCheck' | 'healthCheckInterval'>

export interface LoadSheddingOptions extends Thresholds {
  /** How long pressure must last before requests are shed. */
  sustainMs?: number
}

const RETRY_AFTER_SECONDS = 5
/** At most one warning per interval: logging every shed request would add to the load. */
const WARN_INTERVAL_MS = 10_000

/**
 * Sheds load with 503 problems (and `Retry-After`) when the event loop lags by more than a
 * second or the heap nears V8's limit, instead of queueing requests until they time out.
 * Pressure must last a while first: one slow sample (a start-up compile, a long GC pause)
 * would otherwise turn away a second of requests.
 */
export default fp(async function loadShedding (app: FastifyInstance, { options = {} }: { options?: LoadSheddingOptions }) {
  const { sustainMs = 2_000, ...thresholds } = options
  let warnedAt = 0
  let pressureSince = 0
  let pressureSeenAt = 0
  await app.register(underPressure, {
    maxEventLoopDelay: 1_000,
    maxHeapUsedBytes: Math.floor(getHeapStatistics().heap_size_limit * 0.9),
    ...thresholds,
    // Thrown from an async handler, the problem goes through our error handler like any other.
    pressureHandler: async (request, _reply, type, value) => {
      if (request.routeOptions.config.loadShedding === false) return
      const now = Date.now()
      // Under-pressure calls this only while under pressure: a gap means an earlier episode ended.
      if (now - pressureSeenAt > sustainMs) pressureSince = now
      pressureSeenAt = now
      if (now - pressureSince < sustainMs) return
      if (now - warnedAt > WARN_INTERVAL_MS) {
        warnedAt = now
        app.log.warn({ type, value }, 'under pressure: shedding load')
      }
      throw serviceUnavailable('The server is overloaded; retry shortly', RETRY_AFTER_SECONDS)
    }
  })
}, { name: 'load-shedding', dependencies: ['errors'] })

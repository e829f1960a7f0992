import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { Config } from '../config.js'
import { tooManyRequests } from '../lib/problem.js'

/** One limit: at most `max` requests per `timeWindow` ms for each key; a key of undefined skips the limit. */
export interface LimitRule {
  name: string
  max: number
  timeWindow: number
  key: (request: FastifyRequest) => string | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * A hook enforcing several limits at once (e.g. per client and per IP, or per minute and per hour):
     * `RateLimit-*` headers describe the tightest one, and any exceeded limit is a 429 problem.
     */
    limitRequests (rules: LimitRule[]): (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

/** The client address; requests without one (injected WebSocket upgrades) share a key rather than fail. */
export const clientIp = (request: FastifyRequest): string => request.ip ?? 'unknown'

const rateLimited = (retryAfterSeconds: number) =>
  tooManyRequests(`Too many requests: retry in ${retryAfterSeconds} seconds`, retryAfterSeconds, 'rate-limited')

/**
 * Per-client limits on every route (`config: { rateLimit: false }` exempts one), built on @fastify/rate-limit
 * (`global: false`: stricter limits of a route go through `limitRequests` or `config.rateLimit`). In memory, or shared by every instance through Redis with REDIS_URL; when
 * Redis is unreachable requests are let through (fail open) rather than refused.
 */
export default fp(async function rateLimits (app: FastifyInstance, { config }: { config: Config }) {
  let redis: Redis | undefined
  if (config.REDIS_URL !== undefined) {
    // Loaded only for a shared store.
    const { Redis: RedisClient } = await import('ioredis')
    redis = new RedisClient(config.REDIS_URL, {
      connectTimeout: 1_000,
      commandTimeout: 500,
      maxRetriesPerRequest: 1,
      // Fail at once while disconnected instead of queueing behind a dead connection.
      enableOfflineQueue: false
    })
    redis.on('error', (error: Error) => app.log.warn({ reason: error.message }, 'rate-limit store (Redis) unavailable: not limiting'))
    const client = redis
    app.addHook('onClose', async () => { client.disconnect() })
  }

  await app.register(rateLimit, {
    global: false,
    enableDraftSpec: true,
    skipOnError: true,
    nameSpace: 'catalog-api:rate-limit:',
    ...(redis === undefined ? {} : { redis }),
    keyGenerator: clientIp,
    // Must carry statusCode 429, or the plugin's reply becomes a 500; the error handler renders it as a problem.
    errorResponseBuilder: (_request, context) => rateLimited(Math.max(1, Math.ceil(context.ttl / 1000)))
  })

  app.decorate('limitRequests', (rules: LimitRule[]) => {
    const limits = rules.map((rule) => ({
      rule,
      check: app.createRateLimit({
        max: rule.max,
        timeWindow: rule.timeWindow,
        keyGenerator: (request) => `${rule.name}:${rule.key(request) ?? ''}`
      })
    }))
    return async (request: FastifyRequest, reply: FastifyReply) => {
      const applying = limits.filter(({ rule }) => rule.key(request) !== undefined)
      const results = await Promise.all(applying.map(({ check }) => check(request)))
      let tightest: { max: number, remaining: number, ttlInSeconds: number } | undefined
      let retryAfter = 0
      for (const result of results) {
        if (result.isAllowed) continue
        if (tightest === undefined || result.remaining < tightest.remaining) tightest = result
        if (result.isExceeded) retryAfter = Math.max(retryAfter, result.ttlInSeconds, 1)
      }
      // Several hooks may limit one request (per client, then per route): the headers describe the tightest of all.
      const current = reply.getHeader('ratelimit-remaining')
      if (tightest !== undefined && (current === undefined || Number(current) > tightest.remaining)) {
        reply.header('ratelimit-limit', tightest.max)
        reply.header('ratelimit-remaining', tightest.remaining)
        reply.header('ratelimit-reset', tightest.ttlInSeconds)
      }
      if (retryAfter > 0) throw rateLimited(retryAfter)
    }
  })

  // Every route, per client: the user of a valid token, else the IP. Both windows are enforced at once.
  // After the auth plugin's onRequest hook (registered first), which says who the client is; before
  // parsing and validation, so that refused requests (400, 401, 403, 413, 415) count too.
  const clientKey = (request: FastifyRequest) => request.user ? `user:${request.user.id}` : `ip:${clientIp(request)}`
  const perClient = app.limitRequests([
    { name: 'client-minute', max: config.RATE_LIMIT_PER_MINUTE, timeWindow: 60_000, key: clientKey },
    { name: 'client-hour', max: config.RATE_LIMIT_PER_HOUR, timeWindow: 3_600_000, key: clientKey }
  ])
  app.addHook('onRequest', (request, reply, done) => {
    if (request.routeOptions.config.rateLimit === false) {
      done()
      return
    }
    perClient(request, reply).then(() => { done() }, done)
  })
}, { name: 'rate-limit', dependencies: ['errors', 'auth'] })

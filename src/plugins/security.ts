import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'
import type { Config } from '../config.js'

const REQUEST_ID = /^[\w.:-]{1,128}$/

/** Honours a well-formed incoming `X-Request-Id`, otherwise makes one. */
export function requestId (request: { headers: Record<string, string | string[] | undefined> }): string {
  const given = request.headers['x-request-id']
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
}

const EXPOSED_HEADERS = ['ETag', 'Location', 'Link', 'Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'RateLimit-Policy', 'X-Request-Id']

/**
 * The headers helmet's middleware sets with `options`. They are the same on every response, so they are worked out once:
 * applied per request, helmet (and @fastify/helmet, which builds the middleware again for every request) costs more
 * than everything else a liveness probe does.
 */
export function helmetHeaders (options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const recorder = {
    setHeader: (name: string, value: string) => { headers[name.toLowerCase()] = value },
    removeHeader: () => undefined
  }
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, () => undefined)
  return headers
}

/** Security headers (with a CSP Swagger UI works under), CORS from config, and the request id echoed back. */
export default fp(async function security (app: FastifyInstance, { config }: { config: Config }) {
  const headers = helmetHeaders({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'", 'data:'],
        objectSrc: ["'none'"],
        frameAncestors: ["'none'"],
        upgradeInsecureRequests: null
      }
    },
    crossOriginResourcePolicy: { policy: 'same-site' }
  })
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(headers).header('x-request-id', request.id)
    done()
  })
  // Without CORS_ORIGINS no other origin may call: no CORS headers, and preflight requests are 405 like any OPTIONS.
  if (config.CORS_ORIGINS.length === 0) return
  const allowedOrigins = new Set(config.CORS_ORIGINS)
  await app.register(cors, {
    // A function rather than the list: a disallowed origin then gets no CORS headers at all.
    origin: (origin, callback) => { callback(null, origin !== undefined && allowedOrigins.has(origin)) },
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    exposedHeaders: EXPOSED_HEADERS,
    credentials: false,
    maxAge: 600,
    // Its strict mode answers an OPTIONS lacking the preflight headers with a text/plain 400, not a problem.
    strictPreflight: false
  })
}, { name: 'security' })

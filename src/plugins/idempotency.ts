import { createHash } from 'node:crypto'
import { and, eq, lt, lte } from 'drizzle-orm'
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, onResponseHookHandler, onSendHookHandler, preHandlerHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { problemResponse } from '../../schemas/common.js'
import { idempotencyKeys } from '../db/schema.js'
import { canonicalJson } from '../lib/canonical-json.js'
import { HttpProblem } from '../lib/problem.js'

/**
 * How an opted-in route identifies a request. `true` uses its parsed JSON body. A route whose body is
 * only read in its handler (multipart) passes `fingerprint`: it runs as the route's last preHandler, so
 * it may read the upload itself (e.g. hash the bytes and keep them on the request for the handler).
 */
export interface IdempotencyOptions {
  fingerprint: (request: FastifyRequest) => string | Promise<string>
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Honour `Idempotency-Key` on this route (see the idempotency plugin). */
    idempotency?: boolean | IdempotencyOptions
  }
  interface FastifyInstance {
    /** Deletes the expired idempotency keys now (a timer does it periodically); resolves to how many. */
    purgeIdempotencyKeys (): Promise<number>
  }
}

export interface IdempotencyPluginOptions {
  /** How long a key is remembered (24 h: the contract promises at least that). */
  ttlMs?: number
  /** How often expired keys are deleted. */
  cleanupIntervalMs?: number
  /**
   * How long an `in_progress` key stays its claimant's (60 s). Older, its owner is presumed dead (crash, kill)
   * and the next request takes it over; it must exceed the longest a request can run (the 30 s request timeout).
   */
  leaseMs?: number
}

/** As documented; Node presents it in lower case. */
const HEADER = 'Idempotency-Key'
/** What a replay restores besides the status and the body. */
const REPLAYED_HEADERS = ['content-type', 'location', 'etag']

interface Claim {
  userId: string
  key: string
  settled: boolean
}

const KEY_HEADER_SCHEMA = {
  type: 'string',
  minLength: 1,
  maxLength: 255,
  description: 'Makes a retry safe: a repeat with the same key and body by the same user within 24 h replays the first ' +
    'response (marked `Idempotent-Replayed: true`) instead of running again. The same key with another body is 422; ' +
    'a repeat while the first is still running is 409.',
  examples: ['4f9a7c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b']
}

const hooks = <T> (existing: T | T[] | undefined): T[] => existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]

/** The route's schema with the header, and the 409 and 422 it may now answer, documented. */
function documented (schema: FastifySchema = {}): FastifySchema {
  const headers = (schema.headers ?? {}) as { properties?: Record<string, unknown> }
  const response = (schema.response ?? {}) as Record<string, unknown>
  return {
    ...schema,
    headers: { ...headers, type: 'object', properties: { ...headers.properties, [HEADER]: KEY_HEADER_SCHEMA } },
    response: {
      ...response,
      409: response[409] ?? problemResponse(409, 'A request with this `Idempotency-Key` is still in progress, or the request conflicts with the current state'),
      422: response[422] ?? problemResponse(422, 'This `Idempotency-Key` was used with another request')
    }
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

/**
 * `Idempotency-Key` for POST routes that opt in with `config: { idempotency: true }` (or an
 * `IdempotencyOptions`), per RFC draft-ietf-httpapi-idempotency-key-header. Keys are scoped to the
 * authenticated user and kept in Postgres, so every instance sees them:
 *
 * - preHandler claims the key with an `in_progress` row. If the key exists: another fingerprint
 *   (method, route and canonical body) → 422; still in progress → 409; completed → the stored status,
 *   body, `Content-Type`, `Location` and `ETag` are replayed without running the handler. An
 *   `in_progress` row older than the lease was abandoned by a dead owner: the request takes it over.
 * - onSend stores a 2xx or 4xx response but 429; any other (a 5xx, a thrown error) deletes the row, so the
 *   client may retry. A response that never reaches onSend releases the key when the request ends.
 * - Keys expire after 24 h (an expired one counts as new) and are purged by a timer.
 *
 * Requests without the header, and anonymous ones, pass through untouched.
 */
export default fp(async function idempotency (app: FastifyInstance, options: IdempotencyPluginOptions) {
  const ttlMs = options.ttlMs ?? 24 * 60 * 60 * 1000
  const leaseMs = options.leaseMs ?? 60 * 1000
  const claims = new WeakMap<FastifyRequest, Claim>()

  const thisKey = (claim: Pick<Claim, 'userId' | 'key'>) => and(eq(idempotencyKeys.userId, claim.userId), eq(idempotencyKeys.key, claim.key))

  async function release (request: FastifyRequest, claim: Claim): Promise<void> {
    claim.settled = true
    try {
      await app.db.delete(idempotencyKeys).where(thisKey(claim))
    } catch (error) {
      request.log.error({ err: error }, 'could not release an idempotency key; it stays in progress until it expires')
    }
  }

  /**
   * Claims the key if its row is `in_progress` past the lease: its owner died without settling it. Conditional,
   * so of several requests finding the same abandoned row only one takes it over.
   */
  async function takeOverAbandoned (claim: Pick<Claim, 'userId' | 'key'>, fingerprint: string, now: Date): Promise<boolean> {
    const taken = await app.db.update(idempotencyKeys)
      .set({ fingerprint, createdAt: now, expiresAt: new Date(now.getTime() + ttlMs) })
      .where(and(thisKey(claim), eq(idempotencyKeys.state, 'in_progress'), lt(idempotencyKeys.createdAt, new Date(now.getTime() - leaseMs))))
      .returning({ key: idempotencyKeys.key })
    return taken.length > 0
  }

  const replay = (reply: FastifyReply, stored: typeof idempotencyKeys.$inferSelect): FastifyReply =>
    reply
      .code(stored.responseStatus ?? 200)
      .headers(stored.responseHeaders ?? {})
      .header('idempotent-replayed', 'true')
      .send(stored.responseBody ?? '')

  /** Claims the key of a request, or answers it: a replay (the reply, sent) or a 409 or 422 problem (thrown). */
  async function claimKey (request: FastifyRequest, reply: FastifyReply, userId: string, key: string, fingerprintOf: IdempotencyOptions['fingerprint']): Promise<FastifyReply | undefined> {
    const fingerprint = sha256(`${request.method}\n${request.routeOptions.url ?? ''}\n${await fingerprintOf(request)}`)
    // Twice at most: the second attempt follows an expired (or just released) key the first one cleared.
    for (let attempt = 0; attempt < 2; attempt++) {
      const now = new Date()
      const claimed = await app.db.insert(idempotencyKeys)
        .values({ userId, key, fingerprint, state: 'in_progress', createdAt: now, expiresAt: new Date(now.getTime() + ttlMs) })
        .onConflictDoNothing()
        .returning({ key: idempotencyKeys.key })
      if (claimed.length > 0 || await takeOverAbandoned({ userId, key }, fingerprint, now)) {
        claims.set(request, { userId, key, settled: false })
        return undefined
      }
      const [stored] = await app.db.select().from(idempotencyKeys).where(thisKey({ userId, key }))
      if (stored === undefined) continue
      if (stored.expiresAt <= now) {
        await app.db.delete(idempotencyKeys).where(and(thisKey({ userId, key }), lte(idempotencyKeys.expiresAt, now)))
        continue
      }
      if (stored.fingerprint !== fingerprint) {
        throw new HttpProblem(422, 'This Idempotency-Key was already used with another request: use a new key', { code: 'idempotency-key-reused' })
      }
      if (stored.state !== 'completed') {
        throw new HttpProblem(409, 'A request with this Idempotency-Key is still in progress: retry later', {
          code: 'idempotency-key-in-progress',
          headers: { 'retry-after': '1' }
        })
      }
      return replay(reply, stored)
    }
    throw new HttpProblem(409, 'This Idempotency-Key is changing hands: retry', { code: 'idempotency-key-in-progress', headers: { 'retry-after': '1' } })
  }

  // The route hooks take a callback: most requests carry no key, and an async hook costs each of them a promise and a turn.
  const claiming = (fingerprintOf: IdempotencyOptions['fingerprint']): preHandlerHookHandler => (request, reply, done) => {
    const key = request.headers[HEADER.toLowerCase()]
    if (typeof key !== 'string' || request.user === null) {
      done()
      return
    }
    claimKey(request, reply, request.user.id, key, fingerprintOf).then((replayed) => { if (replayed === undefined) done() }, done)
  }

  const storing: onSendHookHandler<unknown> = (request, reply, payload, done) => {
    const claim = claims.get(request)
    if (claim === undefined || claim.settled) {
      done(null, payload)
      return
    }
    store(request, reply, claim, payload).then(() => { done(null, payload) }, done)
  }

  /** Keeps a claimed key's response for replays, or releases the key when the response is not one to replay. */
  async function store (request: FastifyRequest, reply: FastifyReply, claim: Claim, payload: unknown): Promise<void> {
    const status = reply.statusCode
    // A 429 is not the request's answer but a request to come back: the retry must run, not replay it.
    const storable = (status >= 200 && status < 300) || (status >= 400 && status < 500 && status !== 429)
    const body = payload === undefined || payload === null ? '' : typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : undefined
    if (!storable || body === undefined) {
      await release(request, claim)
      return
    }
    const headers: Record<string, string> = {}
    for (const name of REPLAYED_HEADERS) {
      const value = reply.getHeader(name)
      if (value !== undefined) headers[name] = String(value)
    }
    try {
      await app.db.update(idempotencyKeys)
        .set({ state: 'completed', responseStatus: status, responseHeaders: headers, responseBody: body })
        .where(thisKey(claim))
      claim.settled = true
    } catch (error) {
      request.log.error({ err: error }, 'could not store the response of an idempotency key; releasing it')
      await release(request, claim)
    }
  }

  const releaseUnsettled: onResponseHookHandler = (request, _reply, done) => {
    const claim = claims.get(request)
    if (claim === undefined || claim.settled) {
      done()
      return
    }
    release(request, claim).then(() => { done() }, done)
  }

  app.addHook('onRoute', (route) => {
    const config = route.config?.idempotency
    if (config === undefined || config === false) return
    const fingerprintOf = config === true ? (request: FastifyRequest) => canonicalJson(request.body ?? null) : config.fingerprint
    route.schema = documented(route.schema)
    route.preHandler = [...hooks(route.preHandler), claiming(fingerprintOf)]
    route.onSend = [...hooks(route.onSend), storing]
    route.onResponse = [...hooks(route.onResponse), releaseUnsettled]
  })

  app.decorate('purgeIdempotencyKeys', async () => {
    const purged = await app.db.delete(idempotencyKeys).where(lte(idempotencyKeys.expiresAt, new Date())).returning({ key: idempotencyKeys.key })
    return purged.length
  })

  let timer: NodeJS.Timeout | undefined
  let purging: Promise<unknown> = Promise.resolve()
  app.addHook('onReady', async () => {
    timer = setInterval(() => {
      purging = app.purgeIdempotencyKeys().catch((error: unknown) => app.log.warn({ err: error }, 'purging expired idempotency keys failed'))
    }, options.cleanupIntervalMs ?? 10 * 60 * 1000)
    // The purge must not keep the process alive.
    timer.unref()
  })
  app.addHook('onClose', async () => {
    clearInterval(timer)
    await purging
  })
}, { name: 'idempotency', dependencies: ['db', 'errors', 'auth'] })

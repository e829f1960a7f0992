import { hkdfSync, randomBytes, randomUUID } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import jwt from '@fastify/jwt'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { OAUTH2_SCHEME } from '../../schemas/common.js'
import type { Scopes } from './scopes.js'
import type { Config } from '../config.js'
import { challenge, forbidden, HttpProblem, invalidToken, unauthorized } from '../lib/problem.js'
import { findLiveSession, loginsChanged } from './repository.js'
import { SessionCache } from './session-cache.js'

/** Who a request acts for: set from a valid bearer token, null without one. */
export interface Principal {
  id: string
  sessionId: string
  scopes: string[]
  isSuperuser: boolean
  /** When the access token expires (ms since the epoch): long-lived connections end then. */
  expiresAt: number
}

/** What our access tokens carry besides the registered claims (`iat`, `exp`, `iss`, `aud`, `jti`). */
export interface AccessTokenClaims {
  sub: string
  sid: string
  scope: string
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenClaims & { jti?: string }
    // `request.user` is set by our onRequest hook (never by `request.jwtVerify`, which we do not use).
    user: Principal | null
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * `false`: the route does not read bearer tokens, so a stale one is not a 401 there
     * (the token endpoint, which a client calls precisely when its access token has expired).
     */
    bearer?: boolean
  }
  interface FastifyRequest {
    /** Why the request's bearer token was refused, until the route's first hook answers with it. */
    bearerRefusal: HttpProblem | null
  }
  interface FastifyInstance {
    /** Verifies an access token and loads who it acts for; throws a 401 problem when it is not valid now. */
    authenticate (token: string): Promise<Principal>
    /** Signs an access token of a login. */
    issueAccessToken (claims: AccessTokenClaims): string
    /** A 32-byte key for `purpose`, derived from the token secret (shared by every instance). */
    deriveKey (purpose: string): Buffer
    /** The scopes the registered resources declare. */
    scopes: Scopes
  }
}

/** Clock skew allowed between instances, on `exp`, `nbf` and `iat`. */
const CLOCK_TOLERANCE_MS = 5_000
/**
 * How long a login found live is believed before the database is asked again: a login ended on another instance stops
 * its access tokens here within this (one ended on this instance, at once).
 */
const SESSION_CACHE_TTL_MS = 500
const SESSION_CACHE_MAX = 10_000
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The secret from config, else one generated once and kept under DATA_DIR, so restarts keep tokens valid. */
async function tokenSecret (config: Config, log: FastifyBaseLogger): Promise<string> {
  if (config.JWT_SECRET !== undefined) return config.JWT_SECRET
  const path = join(config.DATA_DIR, 'jwt-secret')
  try {
    await mkdir(config.DATA_DIR, { recursive: true })
    // `wx`: of two processes starting at once, the second reads the first one's secret.
    await writeFile(path, randomBytes(48).toString('base64url'), { mode: 0o600, flag: 'wx' })
    log.warn({ path }, 'JWT_SECRET is not set: generated a token secret and stored it under DATA_DIR; set JWT_SECRET (shared by every instance) in production')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    log.warn({ path }, 'JWT_SECRET is not set: using the token secret stored under DATA_DIR')
  }
  const secret = (await readFile(path, 'utf8')).trim()
  if (secret.length < 32) throw new Error(`${path} holds a token secret shorter than 32 characters: delete it or set JWT_SECRET`)
  return secret
}

/** The token of an `Authorization: Bearer` header; other schemes (Swagger UI's `Basic Og==`) are not ours to read. */
function bearerToken (header: string | undefined): string | undefined {
  const match = /^Bearer(?: +(.*))?$/i.exec(header ?? '')
  return match === null ? undefined : (match[1] ?? '').trim()
}

function readClaims (payload: unknown): AccessTokenClaims & { exp: number } | undefined {
  const { sub, sid, scope, exp, iat } = (payload ?? {}) as Partial<Record<keyof AccessTokenClaims | 'exp' | 'iat', unknown>>
  if (typeof sub !== 'string' || !UUID.test(sub) || typeof sid !== 'string' || !UUID.test(sid) || typeof scope !== 'string') return undefined
  if (typeof exp !== 'number') return undefined
  // fast-jwt checks `iat` only against a maximum age: a token issued in the future was not issued by us.
  if (typeof iat !== 'number' || iat * 1000 > Date.now() + CLOCK_TOLERANCE_MS) return undefined
  return { sub, sid, scope, exp }
}

/** The scope alternatives a route documents in `schema.security` (from `requires()`); none means public. */
function requiredScopes (schema: unknown): string[][] {
  const security = (schema as { security?: unknown } | undefined)?.security
  if (!Array.isArray(security)) return []
  // An empty alternative (`{}`) lets anonymous callers in: the route checks what a token, if any, may see.
  if ((security as object[]).some((alternative) => Object.keys(alternative).length === 0)) return []
  return (security as Array<Partial<Record<string, string[]>>>).flatMap((alternative) => {
    const scopes = alternative[OAUTH2_SCHEME]
    return scopes === undefined ? [] : [scopes]
  })
}

/** The signed-in principal of a route that requires one (its scopes were checked before the handler). */
export function currentPrincipal (request: FastifyRequest): Principal {
  if (request.user === null) throw unauthorized('An access token is required', { headers: { 'www-authenticate': challenge() } })
  return request.user
}

/**
 * Bearer JWT authentication for every route, and scope checks derived from each route's documented
 * `schema.security`, so the OpenAPI document and the enforcement cannot drift apart.
 */
export default fp(async function auth (app: FastifyInstance, { config, scopes: declared }: { config: Config, scopes: Scopes }) {
  const secret = await tokenSecret(config, app.log)
  await app.register(jwt, {
    secret,
    sign: {
      algorithm: 'HS256',
      iss: config.JWT_ISSUER,
      aud: config.JWT_AUDIENCE,
      // A number is seconds; a unitless string would be read as milliseconds.
      expiresIn: config.ACCESS_TOKEN_TTL / 1000
    },
    verify: {
      algorithms: ['HS256'],
      allowedIss: config.JWT_ISSUER,
      allowedAud: config.JWT_AUDIENCE,
      clockTolerance: CLOCK_TOLERANCE_MS,
      // `allowedIss`/`allowedAud` check those claims only when present: requiring them pins them.
      requiredClaims: ['iss', 'aud', 'sub', 'sid', 'scope', 'exp', 'iat', 'jti'],
      // A token is checked once, then remembered until it expires (a client sends the same one many times).
      cache: true
    }
  })

  app.decorate('scopes', declared)
  const sessions = new SessionCache({ ttlMs: SESSION_CACHE_TTL_MS, max: SESSION_CACHE_MAX })
  const ignoreLoginChanges = loginsChanged.listen(app.db, (change) => { sessions.forget(change) })
  app.addHook('onClose', async () => { ignoreLoginChanges() })

  app.decorate('deriveKey', (purpose: string) => Buffer.from(hkdfSync('sha256', secret, '', `catalog-api/${purpose}`, 32)))
  // `jti` in the payload: per-call signer options would make @fastify/jwt build a new signer for every token.
  app.decorate('issueAccessToken', (claims: AccessTokenClaims) => app.jwt.sign({ ...claims, jti: randomUUID() }))

  app.decorate('authenticate', async (token: string): Promise<Principal> => {
    let payload: unknown
    try {
      payload = app.jwt.verify(token)
    } catch (error) {
      throw invalidToken((error as { code?: string }).code === 'FAST_JWT_EXPIRED' ? 'The access token has expired' : 'The access token is invalid')
    }
    const claims = readClaims(payload)
    if (claims === undefined) throw invalidToken('The access token is invalid')
    const now = Date.now()
    const session = await sessions.find(claims.sid, claims.sub, now, () => findLiveSession(app.db, claims.sid, new Date(now), claims.sub))
    if (session === undefined) throw invalidToken('The login of this access token has ended')
    // A superuser demoted since the token was issued loses `admin` at once.
    const scopes = declared.read(claims.scope).filter((scope) => declared.holds(scope, session.isSuperuser))
    return { id: session.userId, sessionId: session.id, scopes, isSuperuser: session.isSuperuser, expiresAt: claims.exp * 1000 }
  })

  // A token that is not valid now is refused only by the route's first hook (below): the global hooks after this
  // one, the rate limit's among them, still run, so guessing or replaying tokens is counted like any request.
  app.decorateRequest('bearerRefusal', null)
  // Hooks take a callback where they mostly finish at once: an async hook costs every request a promise and a turn.
  app.addHook('onRequest', (request, _reply, done) => {
    const token = request.headers.authorization === undefined || request.routeOptions.config.bearer === false
      ? undefined
      : bearerToken(request.headers.authorization)
    if (token === undefined) {
      done()
      return
    }
    app.authenticate(token).then((principal) => {
      request.user = principal
      done()
    }, (error: unknown) => {
      if (!(error instanceof HttpProblem) || error.statusCode !== 401) {
        done(error as Error)
        return
      }
      request.bearerRefusal = error
      done()
    })
  })
  const refuseInvalidBearer: onRequestHookHandler = (request, _reply, done) => {
    done(request.bearerRefusal ?? undefined)
  }

  // Route-level onRequest hooks run after the global ones, and before the body is even read.
  app.addHook('onRoute', (route) => {
    if (route.config?.bearer === false) return
    const alternatives = requiredScopes(route.schema)
    const undeclared = alternatives.flat().find((scope) => !declared.has(scope))
    if (undeclared !== undefined) throw new Error(`${route.method.toString()} ${route.url} requires the scope ${undeclared}, which no resource declares`)
    const existing = route.onRequest === undefined ? [] : [route.onRequest].flat()
    if (alternatives.length === 0) {
      route.onRequest = [refuseInvalidBearer, ...existing]
      return
    }
    const authorize: onRequestHookHandler = (request, _reply, done) => {
      const principal = currentPrincipal(request)
      if (alternatives.some((scopes) => scopes.every((scope) => principal.scopes.includes(scope)))) {
        done()
        return
      }
      const needed = declared.format(alternatives[0] ?? [])
      throw forbidden(`This operation needs the scope ${alternatives.map((scopes) => declared.format(scopes)).join(' or ')}`, {
        code: 'insufficient-scope',
        headers: { 'www-authenticate': challenge({ error: 'insufficient_scope', scope: needed }) }
      })
    }
    route.onRequest = [refuseInvalidBearer, authorize, ...existing]
  })
}, { name: 'auth', dependencies: ['db', 'errors'] })

import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import {
  createToken, revokeToken, type OAuthErrorCode, type PasswordGrant, type RefreshTokenGrant, type RevokeRequest, type TokenRequest, type TokenResponse
} from '../../schemas/auth.js'
import type { ValidationIssue } from '../../schemas/common.js'
import type { Config } from '../config.js'
import { HttpProblem } from '../lib/problem.js'
import { validationIssues } from '../lib/validation-issues.js'
import { clientIp } from '../plugins/rate-limit.js'
import { OAuthFailure } from './oauth-failure.js'
import { verifyPassword } from './passwords.js'
import * as sessions from './repository.js'

const CLEANUP_INTERVAL_MS = 60 * 60 * 1000
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' }

function sendOAuthError (reply: FastifyReply, error: OAuthErrorCode, description: string): FastifyReply {
  return reply.code(400).headers(NO_STORE).type('application/json; charset=utf-8').serializer(JSON.stringify)
    .send({ error, error_description: description })
}

const describe = (issues: ValidationIssue[]) =>
  `The request is invalid: ${issues.map((issue) => `${issue.path} ${issue.message}`).join('; ')}`

/**
 * The token endpoints answer RFC 6749 §5.2 errors: every 400 (validation, malformed body, NUL bytes)
 * becomes `invalid_request`; anything else goes on to the app's problem+json handler.
 */
function oauthErrorHandler (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof OAuthFailure) return sendOAuthError(reply, error.error, error.message)
  // A `grant_type` the request schema's discriminator knows no branch for: RFC 6749 §5.2 names that error.
  if (error.validation?.some((issue) => issue.keyword === 'discriminator' && issue.params.error === 'mapping') === true) {
    return sendOAuthError(reply, 'unsupported_grant_type', 'grant_type must be password or refresh_token')
  }
  if (error.validation !== undefined) {
    return sendOAuthError(reply, 'invalid_request', describe(validationIssues('body', error.validation)))
  }
  if (error.statusCode === 400) {
    const issues = error instanceof HttpProblem ? error.errors ?? [] : []
    return sendOAuthError(reply, 'invalid_request', issues.length === 0 ? error.message : describe(issues))
  }
  throw error
}

/** The username a token request names, as the rate limit keys it; undefined for other grants. */
function loginName (request: FastifyRequest): string | undefined {
  const username = (request.body as { username?: unknown } | undefined)?.username
  return typeof username === 'string' ? username.toLowerCase().slice(0, 254) : undefined
}

/** OAuth2 token and revocation endpoints, and the periodic removal of ended logins. */
const auth: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  // Forms are parsed only here: every other route keeps answering 415 to them.
  await app.register(formbody)

  const loginKey = (request: FastifyRequest) => {
    const name = loginName(request)
    return name === undefined ? undefined : `${clientIp(request)}|${name}`
  }
  const limit = app.limitRequests([
    { name: 'token-login', max: config.AUTH_RATE_LIMIT_PER_MINUTE, timeWindow: 60_000, key: loginKey },
    { name: 'token-ip', max: config.AUTH_RATE_LIMIT_PER_MINUTE * 5, timeWindow: 60_000, key: clientIp }
  ])

  const refreshLifetime = () => new Date(Date.now() + config.REFRESH_TOKEN_TTL)

  const tokenResponse = (userId: string, sessionId: string, scope: string, refreshToken: string): TokenResponse => ({
    access_token: app.issueAccessToken({ sub: userId, sid: sessionId, scope }),
    token_type: 'bearer',
    expires_in: Math.round(config.ACCESS_TOKEN_TTL / 1000),
    refresh_token: refreshToken,
    scope
  })

  async function passwordGrant (body: PasswordGrant): Promise<TokenResponse> {
    // Unknown scope names are refused before the password is checked: that reveals nothing about the account.
    const requested = app.scopes.requested(body.scope)
    const user = await sessions.findCredentialsByEmail(app.db, body.username)
    const valid = await verifyPassword(user?.passwordHash, body.password)
    if (user === undefined || !valid) throw new OAuthFailure('invalid_grant', 'The username or password is incorrect')
    if (!user.isActive) throw new OAuthFailure('invalid_grant', 'The account is disabled')
    const scope = app.scopes.format(app.scopes.grant(requested, user.isSuperuser))
    const refreshToken = sessions.newRefreshToken()
    const sessionId = await app.db.transaction(async (tx) => {
      const expiresAt = refreshLifetime()
      const id = await sessions.createSession(tx, user.id, scope, expiresAt)
      await sessions.addRefreshToken(tx, id, refreshToken, expiresAt)
      return id
    })
    return tokenResponse(user.id, sessionId, scope, refreshToken)
  }

  async function refreshGrant (request: FastifyRequest, body: RefreshTokenGrant): Promise<TokenResponse> {
    const tokenHash = sessions.hashRefreshToken(body.refresh_token)
    const requested = app.scopes.requested(body.scope)
    const now = new Date()
    const outcome = await app.db.transaction(async (tx) => {
      const sessionId = await sessions.consumeRefreshToken(tx, tokenHash, now)
      if (sessionId === undefined) {
        const spent = await sessions.findRefreshToken(tx, tokenHash)
        if (spent?.usedAt != null) {
          // A spent token coming back means it was copied: end the login, so neither copy works any more.
          await sessions.revokeSession(tx, spent.sessionId)
          return { reused: spent }
        }
        return {}
      }
      const session = await sessions.findLiveSession(tx, sessionId, now)
      if (session === undefined) return {}
      // Never wider than the login's original grant (RFC 6749 §6); admin only while still a superuser.
      const scope = app.scopes.format(app.scopes.grant(requested, session.isSuperuser, app.scopes.read(session.scope)))
      if (scope !== session.scope) await sessions.narrowSessionScope(tx, session.id, scope)
      const token = sessions.newRefreshToken()
      await sessions.addRefreshToken(tx, session.id, token, refreshLifetime())
      return { session, scope, token }
    })
    if (outcome.reused !== undefined) {
      request.log.warn({ sessionId: outcome.reused.sessionId, userId: outcome.reused.userId }, 'refresh token reused: login revoked')
    }
    if (outcome.session === undefined) throw new OAuthFailure('invalid_grant', 'The refresh token is invalid, expired or already used')
    return tokenResponse(outcome.session.userId, outcome.session.id, outcome.scope, outcome.token)
  }

  app.post('/auth/token', { schema: createToken, config: { bearer: false }, preValidation: limit, errorHandler: oauthErrorHandler }, async (request, reply) => {
    // Bodies documented per media type are not inferred by the type provider; the schema validated this shape.
    const body = request.body as TokenRequest
    const tokens = body.grant_type === 'password' ? await passwordGrant(body) : await refreshGrant(request, body)
    return reply.headers(NO_STORE).send(tokens)
  })

  app.post('/auth/revoke', { schema: revokeToken, config: { bearer: false }, errorHandler: oauthErrorHandler }, async (request, reply) => {
    const { token } = request.body as RevokeRequest
    const refresh = await sessions.findRefreshToken(app.db, sessions.hashRefreshToken(token))
    if (refresh !== undefined) {
      await sessions.revokeSession(app.db, refresh.sessionId)
    } else if (token.includes('.')) {
      // An access token (RFC 7009 §2.1 allows revoking those too): ends its login. Invalid ones are ignored.
      const principal = await app.authenticate(token).catch(() => undefined)
      if (principal !== undefined) await sessions.revokeSession(app.db, principal.sessionId)
    }
    return reply.code(200).headers(NO_STORE).send()
  })

  const cleanup = setInterval(() => {
    sessions.deleteExpired(app.db, new Date())
      .then((deleted) => app.log.debug(deleted, 'deleted expired refresh tokens and ended logins'))
      .catch((error: unknown) => app.log.warn({ err: error }, 'could not delete expired refresh tokens'))
  }, CLEANUP_INTERVAL_MS)
  cleanup.unref()
  app.addHook('onClose', async () => { clearInterval(cleanup) })
}

export default auth

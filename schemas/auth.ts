import { Type, type Static } from '@sinclair/typebox'
import { defineResource, problems, Ref, StrictObject, StringEnum } from './common.js'

const Ignored = (description: string) => Type.Optional(Type.String({ maxLength: 500, description: `${description}; accepted and ignored` }))

const scope = Type.Optional(Type.String({
  maxLength: 200,
  description: 'Space-separated scopes to ask for. Password grant default: `profile items:write`; `admin` only for superusers. ' +
    'A refresh may narrow the granted scope, never widen it.',
  examples: ['profile items:write']
}))

// Not StrictObjects: RFC 6749 §3.2 says unknown parameters are ignored, and Swagger UI's Authorize sends `client_id`.
export const PasswordGrantSchema = Type.Object({
  grant_type: Type.Literal('password'),
  username: Type.String({ minLength: 1, maxLength: 254, description: 'Your email', examples: ['ada@example.com'] }),
  password: Type.String({ minLength: 1, maxLength: 128, writeOnly: true, description: 'Your password' }),
  scope,
  client_id: Ignored('OAuth2 client id'),
  client_secret: Ignored('OAuth2 client secret')
}, {
  $id: 'PasswordGrant',
  title: 'PasswordGrant',
  description: 'RFC 6749 §4.3: a login with your email and password. Unknown parameters are ignored.',
  examples: [{ grant_type: 'password', username: 'ada@example.com', password: 'correct horse battery staple', scope: 'profile items:write' }]
})

export const RefreshTokenGrantSchema = Type.Object({
  grant_type: Type.Literal('refresh_token'),
  refresh_token: Type.String({ minLength: 1, maxLength: 200, description: 'A refresh token; single use' }),
  scope,
  client_id: Ignored('OAuth2 client id'),
  client_secret: Ignored('OAuth2 client secret')
}, {
  $id: 'RefreshTokenGrant',
  title: 'RefreshTokenGrant',
  description: 'RFC 6749 §6: a new pair of tokens for a refresh token. Unknown parameters are ignored.',
  examples: [{ grant_type: 'refresh_token', refresh_token: 'q4Jm2l3cXb0Yt2t1oU8d5h0Zr9a7VwVQe1p6sKxH3nA' }]
})

/** One of the grants, told apart by `grant_type`; another `grant_type` is answered `unsupported_grant_type`. */
export const TokenRequestSchema = Type.Unsafe<Static<typeof PasswordGrantSchema> | Static<typeof RefreshTokenGrantSchema>>({
  $id: 'TokenRequest',
  title: 'TokenRequest',
  description: 'An OAuth2 token request: the password grant or the refresh_token grant, by `grant_type`.',
  type: 'object',
  oneOf: [Ref(PasswordGrantSchema), Ref(RefreshTokenGrantSchema)],
  discriminator: { propertyName: 'grant_type' }
})

export const TokenResponseSchema = StrictObject({
  access_token: Type.String({ maxLength: 4096, description: 'A JWT to send as `Authorization: Bearer <token>`' }),
  token_type: StringEnum(['bearer'] as const),
  expires_in: Type.Integer({ minimum: 0, description: 'Seconds until the access token expires', examples: [900] }),
  refresh_token: Type.String({ maxLength: 200, description: 'Single use: exchange it for a new pair with the refresh_token grant' }),
  scope: Type.String({ maxLength: 200, description: 'The scopes granted, space separated', examples: ['profile items:write'] })
}, {
  $id: 'TokenResponse',
  title: 'TokenResponse',
  description: 'An RFC 6749 §5.1 access token response.',
  examples: [{
    access_token: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl',
    token_type: 'bearer',
    expires_in: 900,
    refresh_token: 'q4Jm2l3cXb0Yt2t1oU8d5h0Zr9a7VwVQe1p6sKxH3nA',
    scope: 'profile items:write'
  }]
})

export const OAUTH_ERRORS = ['invalid_request', 'invalid_grant', 'unsupported_grant_type', 'invalid_scope'] as const
export type OAuthErrorCode = typeof OAUTH_ERRORS[number]

export const OAuthErrorSchema = StrictObject({
  error: StringEnum(OAUTH_ERRORS),
  error_description: Type.String({ maxLength: 2000, description: 'What went wrong, for the developer' })
}, {
  $id: 'OAuthError',
  title: 'OAuthError',
  description: 'An RFC 6749 §5.2 error response.',
  examples: [{ error: 'invalid_grant', error_description: 'The username or password is incorrect' }]
})

/** Not a StrictObject: RFC 7009 clients may send client credentials along, which are ignored. */
export const RevokeRequestSchema = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 4096, description: 'A refresh token (or an access token) to revoke' }),
  token_type_hint: Type.Optional(Type.String({ maxLength: 100, description: '`refresh_token` or `access_token`; a hint only', examples: ['refresh_token'] })),
  client_id: Ignored('OAuth2 client id'),
  client_secret: Ignored('OAuth2 client secret')
}, {
  $id: 'RevokeRequest',
  title: 'RevokeRequest',
  description: 'An RFC 7009 revocation request.',
  examples: [{ token: 'q4Jm2l3cXb0Yt2t1oU8d5h0Zr9a7VwVQe1p6sKxH3nA', token_type_hint: 'refresh_token' }]
})

export type TokenRequest = Static<typeof TokenRequestSchema>
export type PasswordGrant = Static<typeof PasswordGrantSchema>
export type RefreshTokenGrant = Static<typeof RefreshTokenGrantSchema>
export type TokenResponse = Static<typeof TokenResponseSchema>
export type OAuthError = Static<typeof OAuthErrorSchema>
export type RevokeRequest = Static<typeof RevokeRequestSchema>

export const authResource = defineResource({
  tag: { name: 'auth', description: 'OAuth2 password flow: tokens, refresh and revocation' },
  components: [PasswordGrantSchema, RefreshTokenGrantSchema, TokenRequestSchema, TokenResponseSchema, OAuthErrorSchema, RevokeRequestSchema]
})

/**
 * Both media types the token endpoints take: JSON, listed first since client generators use the first (and write a
 * oneOf badly as a form), and forms, what OAuth2 clients and Swagger UI's Authorize send.
 */
const jsonOrForm = <T>(schema: T) => ({
  content: {
    'application/json': { schema },
    'application/x-www-form-urlencoded': { schema }
  }
})

const noStore = {
  'Cache-Control': { type: 'string', maxLength: 100, description: '`no-store`' },
  Pragma: { type: 'string', maxLength: 100, description: '`no-cache`' }
}

const oauthError = (description: string, example: OAuthError) =>
  ({ description, headers: noStore, content: { 'application/json': { schema: Ref(OAuthErrorSchema), example } } })

export const createToken = {
  operationId: 'createToken',
  tags: ['auth'],
  summary: 'Log in or refresh',
  description: 'The OAuth2 token endpoint. `grant_type=password` with your email as `username` starts a login; ' +
    '`grant_type=refresh_token` exchanges a refresh token (single use) for a new pair. Reusing a spent refresh token ends the whole login. ' +
    'Unknown parameters and a Basic `Authorization` header are ignored. Errors follow RFC 6749 §5.2. ' +
    'Limited per (client IP, username) and per client IP.',
  body: jsonOrForm(Ref(TokenRequestSchema)),
  response: {
    200: { description: 'The tokens', headers: noStore, content: { 'application/json': { schema: Ref(TokenResponseSchema) } } },
    400: oauthError('`invalid_request`, `invalid_grant`, `unsupported_grant_type` or `invalid_scope`',
      { error: 'invalid_grant', error_description: 'The username or password is incorrect' }),
    ...problems(429)
  }
} as const

export const revokeToken = {
  operationId: 'revokeToken',
  tags: ['auth'],
  summary: 'Log out',
  description: 'RFC 7009 revocation: ends the login a refresh token (or access token) belongs to, with all its tokens. ' +
    'An unknown or already revoked token is also answered 200.',
  body: jsonOrForm(Ref(RevokeRequestSchema)),
  response: {
    200: { type: 'null', description: 'Revoked, or not a token that is valid here', headers: noStore },
    400: oauthError('`invalid_request`: the request is malformed', { error: 'invalid_request', error_description: 'The request is invalid: /token is required' })
  }
} as const

import type { OAuthErrorCode } from '../../schemas/auth.js'

/** An RFC 6749 §5.2 error of the token and revocation endpoints, rendered as `{ error, error_description }`. */
export class OAuthFailure extends Error {
  readonly error: OAuthErrorCode

  constructor (error: OAuthErrorCode, description: string) {
    super(description)
    this.name = 'OAuthFailure'
    this.error = error
  }
}

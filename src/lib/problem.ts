import { STATUS_CODES } from 'node:http'
import { MAX_ISSUE_TEXT, MAX_LISTED_ERRORS, MAX_PROBLEM_TEXT, type Problem, type ValidationIssue } from '../../schemas/common.js'

export interface ProblemOptions {
  /** A short slug naming the problem type; the `type` member is derived from it. */
  code?: string
  headers?: Record<string, string>
  /** The failing fields: the problem lists the first MAX_LISTED_ERRORS and counts them all. */
  errors?: ValidationIssue[]
}

/** Text cut to `max` characters, an ellipsis marking the cut. */
export const clip = (text: string, max: number) => text.length > max ? `${text.slice(0, max - 1)}…` : text

/** One JSON-pointer segment (RFC 6901 escaping), slash included. */
export const pointer = (segment: unknown) => `/${String(segment).replaceAll('~', '~0').replaceAll('/', '~1')}`

const problemType = (code: string) => `urn:catalog-api:problem:${code}`

/**
 * The one error type handlers throw. The error handler renders it as
 * `application/problem+json`; nothing else builds error bodies.
 */
export class HttpProblem extends Error {
  readonly statusCode: number
  readonly code: string
  readonly headers: Record<string, string>
  readonly errors: ValidationIssue[] | undefined

  constructor (statusCode: number, detail: string, options: ProblemOptions = {}) {
    super(detail)
    this.name = 'HttpProblem'
    this.statusCode = statusCode
    this.code = options.code ?? slug(statusCode)
    this.headers = options.headers ?? {}
    this.errors = options.errors
  }

  /** The problem as served: lists and texts cut to the bounds its schema promises. */
  toProblem (instance: string): Problem {
    return {
      type: problemType(this.code),
      title: STATUS_CODES[this.statusCode] ?? 'Error',
      status: this.statusCode,
      detail: clip(this.message, MAX_PROBLEM_TEXT),
      instance: clip(instance, MAX_PROBLEM_TEXT),
      ...(this.errors === undefined || this.errors.length === 0
        ? {}
        : {
            errors: this.errors.slice(0, MAX_LISTED_ERRORS).map((issue) => ({ ...issue, path: clip(issue.path, MAX_ISSUE_TEXT), message: clip(issue.message, MAX_ISSUE_TEXT) })),
            errorCount: this.errors.length
          })
    }
  }
}

function slug (status: number): string {
  return (STATUS_CODES[status] ?? 'error').toLowerCase().replace(/[^a-z0-9]+/g, '-')
}

export const badRequest = (detail: string, options?: ProblemOptions) => new HttpProblem(400, detail, options)
export const unauthorized = (detail: string, options?: ProblemOptions) => new HttpProblem(401, detail, options)
export const forbidden = (detail: string, options?: ProblemOptions) => new HttpProblem(403, detail, options)
export const notFound = (detail: string, options?: ProblemOptions) => new HttpProblem(404, detail, options)
export const conflict = (detail: string, options?: ProblemOptions) => new HttpProblem(409, detail, options)
export const serviceUnavailable = (detail: string, retryAfterSeconds: number) =>
  new HttpProblem(503, detail, { headers: { 'retry-after': String(retryAfterSeconds) } })

const PART_NAMES: Record<ValidationIssue['in'], string> = { body: 'request body', query: 'query string', path: 'path parameters', header: 'request headers' }

/** A 400 listing every failing field of one part of the request. */
export const invalidRequest = (errors: ValidationIssue[]) =>
  badRequest(`The ${PART_NAMES[errors[0]?.in ?? 'body']} is invalid`, { code: 'validation-error', errors })

/** The `WWW-Authenticate` challenge of a bearer token (RFC 6750 §3), with the attributes saying what went wrong. */
export const challenge = (attributes: Record<string, string> = {}) =>
  ['Bearer realm="catalog-api"', ...Object.entries(attributes).map(([name, value]) => `${name}="${value}"`)].join(', ')

/** A 401 for a bearer token that is not valid now, saying why. */
export const invalidToken = (description: string) =>
  unauthorized(description, { code: 'invalid-token', headers: { 'www-authenticate': challenge({ error: 'invalid_token', error_description: description }) } })

/** A 401 for a request whose account was deleted after its token was checked. */
export const accountGone = () => invalidToken('The account of this access token no longer exists')

export const tooManyRequests = (detail: string, retryAfterSeconds: number, code = 'too-many-requests') =>
  new HttpProblem(429, detail, { code, headers: { 'retry-after': String(retryAfterSeconds) } })

export const unsupportedMediaType = (detail: string) => new HttpProblem(415, detail, { code: 'unsupported-media-type' })

import { STATUS_CODES } from 'node:http'
import type { Problem, ValidationIssue } from '../../schemas/common.js'

export interface ProblemOptions {
  /** A short slug naming the problem type; the `type` member is derived from it. */
  code?: string
  headers?: Record<string, string>
  errors?: ValidationIssue[]
}

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

  toProblem (instance: string): Problem {
    return {
      type: problemType(this.code),
      title: STATUS_CODES[this.statusCode] ?? 'Error',
      status: this.statusCode,
      detail: this.message,
      instance,
      ...(this.errors === undefined ? {} : { errors: this.errors })
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

export const tooManyRequests = (detail: string, retryAfterSeconds: number, code = 'too-many-requests') =>
  new HttpProblem(429, detail, { code, headers: { 'retry-after': String(retryAfterSeconds) } })

export const unsupportedMediaType = (detail: string) => new HttpProblem(415, detail, { code: 'unsupported-media-type' })

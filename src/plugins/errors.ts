import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import FindMyWay, { type HTTPMethod } from 'find-my-way'
import type { ValidationIssue } from '../../schemas/common.js'
import { sqlState } from '../lib/logger.js'
import { badRequest, HttpProblem, notFound, serviceUnavailable } from '../lib/problem.js'

const PARTS: Record<string, ValidationIssue['in']> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' }
const PART_NAMES: Record<ValidationIssue['in'], string> = { body: 'request body', query: 'query string', path: 'path parameters', header: 'request headers' }
const METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

interface AjvIssue { instancePath: string, keyword: string, message?: string, params: Record<string, unknown> }

const pointer = (segment: unknown) => `/${String(segment).replaceAll('~', '~0').replaceAll('/', '~1')}`

/** Every failing field of the failing part, as `{ in, path, message }`. */
export function validationIssues (part: ValidationIssue['in'], errors: AjvIssue[]): ValidationIssue[] {
  return errors.map((error) => {
    switch (error.keyword) {
      case 'required':
        return { in: part, path: error.instancePath + pointer(error.params.missingProperty), message: 'is required' }
      case 'additionalProperties':
        return { in: part, path: error.instancePath + pointer(error.params.additionalProperty), message: 'is not a known field' }
      default:
        return { in: part, path: error.instancePath, message: error.message ?? 'is invalid' }
    }
  })
}

/** Postgres rejects NUL in text, and no field of ours may carry one: report each like a validation error. */
function findNul (value: unknown, path = '', found: string[] = []): string[] {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) found.push(path)
  } else if (Array.isArray(value)) {
    value.forEach((entry, index) => findNul(entry, `${path}/${index}`, found))
  } else if (value !== null && typeof value === 'object') {
    for (const [key, entry] of Object.entries(value)) findNul(entry, path + pointer(key), found)
  }
  return found
}

/** Maps errors from Postgres (wrapped by drizzle) without ever exposing their text, which carries parameters. */
function databaseProblem (error: Error): HttpProblem | undefined {
  const code = sqlState(error)
  if (code === '23505') return new HttpProblem(409, 'The resource conflicts with an existing one', { code: 'conflict' })
  if (code === '57014' || code === '40001' || code === '40P01' || code === '55P03') {
    return serviceUnavailable('The database is busy; retry shortly', 1)
  }
  return undefined
}

function toProblem (error: FastifyError): HttpProblem | undefined {
  if (error instanceof HttpProblem) return error
  if (error.validation !== undefined) {
    const part = PARTS[error.validationContext ?? 'body'] ?? 'body'
    return badRequest(`The ${PART_NAMES[part]} is invalid`, { code: 'validation-error', errors: validationIssues(part, error.validation) })
  }
  const fromDatabase = databaseProblem(error)
  if (fromDatabase !== undefined) return fromDatabase
  const status = error.statusCode ?? 500
  // Client errors raised by Fastify and its plugins (bad JSON, 413, 415, ...) carry safe, generic messages.
  if (status >= 400 && status < 500) return new HttpProblem(status, error.message)
  return undefined
}

export function sendProblem (request: FastifyRequest, reply: FastifyReply, problem: HttpProblem): FastifyReply {
  return reply
    .code(problem.statusCode)
    .headers(problem.headers)
    .type('application/problem+json')
    .serializer(JSON.stringify)
    .send(problem.toProblem(request.url.split('?')[0] ?? '/'))
}

/**
 * Renders every error as RFC 9457 problem+json: thrown problems, validation failures,
 * framework and plugin errors, unknown routes (404/405), and requests arriving while closing.
 */
export default fp(async function errors (app: FastifyInstance) {
  let closing = false
  const routes = FindMyWay()

  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    for (const method of methods) {
      const known = METHODS.find((candidate) => candidate === method)
      if (known !== undefined && !routes.hasRoute(known, route.url)) {
        routes.on(known, route.url, () => undefined)
      }
    }
  })

  app.addHook('preClose', async () => { closing = true })
  app.addHook('onRequest', async (_request, reply) => {
    if (closing) {
      reply.header('connection', 'close')
      throw serviceUnavailable('The server is shutting down', 5)
    }
  })

  app.addHook('preValidation', async (request) => {
    for (const [part, value] of [['body', request.body], ['query', request.query], ['path', request.params]] as const) {
      const paths = findNul(value)
      if (paths.length > 0) {
        throw badRequest(`The ${PART_NAMES[part]} is invalid`, {
          code: 'validation-error',
          errors: paths.map((path) => ({ in: part, path, message: 'must not contain NUL characters' }))
        })
      }
    }
  })

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0] ?? '/'
    const allowed = METHODS.filter((method) => routes.find(method, path) !== null)
    if (allowed.length > 0) {
      return sendProblem(request, reply, new HttpProblem(405, `${request.method} is not allowed on ${path}`, { headers: { allow: allowed.join(', ') } }))
    }
    return sendProblem(request, reply, notFound(`No route matches ${request.method} ${path}`))
  })

  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const problem = toProblem(error)
    if (problem !== undefined) {
      if (problem.statusCode >= 500) request.log.warn({ err: error }, problem.message)
      return sendProblem(request, reply, problem)
    }
    request.log.error({ err: error }, 'unhandled error')
    return sendProblem(request, reply, new HttpProblem(500, 'An unexpected error occurred; the request id identifies it in the server log', { code: 'internal-error' }))
  })
}, { name: 'errors' })

import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { ConnectionError, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { ValidationIssue } from '../../schemas/common.js'
import { databaseUnavailable, violatedConstraint } from '../db/errors.js'
import { sqlState } from '../lib/sql-state.js'
import { accountGone, conflict, HttpProblem, invalidRequest, invalidToken, serviceUnavailable } from '../lib/problem.js'
import { validationIssues } from '../lib/validation-issues.js'

const PARTS: Record<string, ValidationIssue['in']> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' }

/** Maps errors from Postgres (wrapped by drizzle) without ever exposing their text, which carries parameters. */
function databaseProblem (error: Error): HttpProblem | undefined {
  const code = sqlState(error)
  if (code === '23505') return new HttpProblem(409, 'The resource conflicts with an existing one', { code: 'conflict' })
  // A row this write refers to was deleted while the request ran (drizzle-kit names foreign keys
  // `<table>_<column>_<referenced table>_<column>_fk`): the account, then the login, ended meanwhile.
  if (code === '23503') {
    const referenced = /_(users|sessions)_id_fk$/.exec(violatedConstraint(error) ?? '')?.[1]
    if (referenced !== undefined) return referenced === 'users' ? accountGone() : invalidToken('The login of this access token has ended')
    return conflict('Something this request refers to was deleted meanwhile: fetch it again')
  }
  if (code === '57014' || code === '40001' || code === '40P01' || code === '55P03') {
    return serviceUnavailable('The database is busy; retry shortly', 1)
  }
  if (databaseUnavailable(error)) return serviceUnavailable('The database is unavailable; retry shortly', 2)
  return undefined
}

function toProblem (error: FastifyError): HttpProblem | undefined {
  if (error instanceof HttpProblem) return error
  if (error.validation !== undefined) {
    const part = PARTS[error.validationContext ?? 'body'] ?? 'body'
    return invalidRequest(validationIssues(part, error.validation))
  }
  const fromDatabase = databaseProblem(error)
  if (fromDatabase !== undefined) return fromDatabase
  const status = error.statusCode ?? 500
  // Client errors raised by Fastify and its plugins (bad JSON, 413, 415, ...) carry safe, generic messages.
  if (status >= 400 && status < 500) return new HttpProblem(status, error.message)
  return undefined
}

/** Sends a problem. Sets the headers hooks would (frameworkErrors and the 404 paths may run none). */
export function sendProblem (request: FastifyRequest, reply: FastifyReply, problem: HttpProblem): FastifyReply {
  return reply
    .code(problem.statusCode)
    .headers(problem.headers)
    .header('x-request-id', request.id)
    .header('x-content-type-options', 'nosniff')
    .type('application/problem+json')
    .serializer(JSON.stringify)
    .send(problem.toProblem(request.url.split('?')[0] ?? '/'))
}

const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'The request headers are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'The request was not received in time']
}

/**
 * Answers what Node's HTTP parser rejects before there is a request (a garbage request line,
 * oversized headers, a timeout): a problem written straight to the socket, which is then closed.
 * Fastify calls it with the instance as `this` (its `clientErrorHandler` option).
 */
export function clientErrorHandler (this: FastifyInstance, error: ConnectionError, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [status, detail] = CLIENT_ERRORS[error.code] ?? [400, 'The request is not valid HTTP']
  const id = randomUUID()
  this.log.debug({ err: error, reqId: id }, 'client error')
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const body = JSON.stringify(new HttpProblem(status, detail).toProblem('/'))
  socket.end([
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: application/problem+json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-Id: ${id}`,
    'X-Content-Type-Options: nosniff',
    'Connection: close',
    '',
    body
  ].join('\r\n'), () => socket.destroy())
}

/**
 * Renders every error as RFC 9457 problem+json: thrown problems, validation failures, framework and plugin
 * errors. The paths that skip the error handler answer with `sendProblem` too (unknown routes, framework errors),
 * and `clientErrorHandler` answers what fails before there is a request.
 */
export default fp(async function errors (app: FastifyInstance) {
  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const problem = toProblem(error)
    if (problem !== undefined) {
      if (problem.statusCode >= 500) request.log.warn({ err: error }, problem.message)
      return sendProblem(request, reply, problem)
    }
    request.log.error({ err: error }, 'unhandled error')
    return sendProblem(request, reply, new HttpProblem(500, 'An unexpected error occurred; the request id identifies it in the server log', { code: 'internal-error' }))
  })
}, { name: 'errors', dependencies: [] })

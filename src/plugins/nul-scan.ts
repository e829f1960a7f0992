import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { findNul } from '../lib/nul.js'
import { invalidRequest } from '../lib/problem.js'

/**
 * Postgres rejects NUL in text: a body, query or path holding one is a 400 listing each place, before any
 * handler sees it. After the unexpected-body check, so a body no route takes is a 415 whatever it holds.
 */
export default fp(async function nulScan (app: FastifyInstance) {
  app.addHook('preValidation', (request, _reply, done) => {
    for (const [part, value] of [['body', request.body], ['query', request.query], ['path', request.params]] as const) {
      const paths = findNul(value)
      if (paths.length > 0) {
        throw invalidRequest(paths.map((path) => ({ in: part, path, message: 'must not contain NUL characters' })))
      }
    }
    done()
  })
}, { name: 'nul-scan', dependencies: ['errors', 'unexpected-body'] })

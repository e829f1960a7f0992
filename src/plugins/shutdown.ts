import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { serviceUnavailable } from '../lib/problem.js'

/**
 * Requests arriving once the server has begun closing get a 503 problem (with `Retry-After` and
 * `Connection: close`) rather than Fastify's own `return503OnClosing` body, which skips the error handler.
 */
export default fp(async function shutdown (app: FastifyInstance) {
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) {
      done()
      return
    }
    reply.header('connection', 'close')
    done(serviceUnavailable('The server is shutting down', 5))
  })
}, { name: 'shutdown', dependencies: ['errors'] })

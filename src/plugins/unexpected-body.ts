import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { unsupportedMediaType } from '../lib/problem.js'

/** A route documents the media types it accepts; one documenting no body accepts none: a body sent to it is 415. */
export default fp(async function unexpectedBody (app: FastifyInstance) {
  app.addHook('preValidation', (request, _reply, done) => {
    if (request.body !== undefined && request.routeOptions.schema?.body === undefined) {
      throw unsupportedMediaType(`${request.method} ${request.routeOptions.url ?? request.url} takes no request body`)
    }
    done()
  })
}, { name: 'unexpected-body', dependencies: ['errors'] })

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import FindMyWay, { type HTTPMethod } from 'find-my-way'
import { HttpProblem, notFound } from '../lib/problem.js'
import { sendProblem } from './errors.js'

const METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

/**
 * Unknown routes as problems: 405 with `Allow` when the path exists for other methods, else 404. Every route
 * added after this plugin is recorded in a route table of its own, which the not-found handler asks.
 */
export default fp(async function notFoundRoutes (app: FastifyInstance) {
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

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0] ?? '/'
    const allowed = METHODS.filter((method) => routes.find(method, path) !== null)
    if (allowed.length > 0) {
      return sendProblem(request, reply, new HttpProblem(405, `${request.method} is not allowed on ${path}`, { headers: { allow: allowed.join(', ') } }))
    }
    return sendProblem(request, reply, notFound(`No route matches ${request.method} ${path}`))
  })
}, { name: 'not-found', dependencies: ['errors'] })

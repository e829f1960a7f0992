import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { API_PREFIX } from '../../schemas/common.js'
import { getIndex, getLiveness, getReadiness } from '../../schemas/service.js'
import { serviceUnavailable } from '../lib/problem.js'
import { packageInfo } from '../paths.js'

const unlimited = { rateLimit: false }

const service: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/', { schema: getIndex }, async () => ({
    name: packageInfo.name,
    version: packageInfo.version,
    links: {
      docs: '/docs',
      openapi: '/openapi.json',
      openapiYaml: '/openapi.yaml',
      asyncapi: '/asyncapi.json',
      dashboard: '/dashboard',
      health: '/health/ready',
      metrics: '/metrics',
      token: `${API_PREFIX}/auth/token`,
      users: `${API_PREFIX}/users`,
      items: `${API_PREFIX}/items`,
      me: `${API_PREFIX}/users/me`,
      websocket: `${API_PREFIX}/ws`,
      events: `${API_PREFIX}/events`
    }
  }))

  // Liveness never sheds load: an overloaded process is alive, and restarting it would not help.
  app.get('/health/live', { schema: getLiveness, config: { ...unlimited, loadShedding: false } }, async () => ({ status: 'ok' as const }))

  app.get('/health/ready', { schema: getReadiness, config: unlimited }, async (request) => {
    const ready = await app.database.ready().catch((error: unknown) => {
      request.log.warn({ err: error }, 'readiness check failed')
      return false
    })
    if (!ready) throw serviceUnavailable('The database is not reachable or not migrated', 5)
    return { status: 'ok' as const }
  })
}

export default service

import { join } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { projectRoot } from '../paths.js'

/** Served as they are, from the source tree (there is nothing to build): an HTML page, its script and its styles. */
const PUBLIC = join(projectRoot, 'src', 'dashboard', 'public')

/** `GET /dashboard`: a live page on the WebSocket channel. Not rate limited, like the docs. */
export default async function dashboard (app: FastifyInstance): Promise<void> {
  app.addHook('onRoute', (route) => { route.config = { ...route.config, rateLimit: false } })
  await app.register(fastifyStatic, { root: PUBLIC, prefix: '/dashboard/', index: false, cacheControl: true, maxAge: 0 })
  app.get('/dashboard', { schema: { hide: true } }, async (_request, reply) => reply.sendFile('index.html'))
}

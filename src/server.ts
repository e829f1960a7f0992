import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { loadConfigOrExit } from './config.js'
import { openEmbedded } from './db/embedded.js'

/** How long in-flight requests get to finish on SIGTERM/SIGINT before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000
/** Slow-loris guard: the headers of a request must arrive within this (below Fastify's requestTimeout). */
const HEADERS_TIMEOUT_MS = 15_000

const config = loadConfigOrExit()

// The embedded database takes longest to open; it opens while the rest of the server loads (failures surface in buildApp).
const embedded = config.DATABASE_URL === undefined ? openEmbedded(config) : undefined
embedded?.catch(() => undefined)

let app: FastifyInstance
try {
  const { buildApp } = await import('./app.js')
  app = await buildApp(config, { database: { embedded } })
} catch (error) {
  // Before the app exists there is no logger: say why on stderr (e.g. the data directory is in use).
  console.error(`could not start: ${(error as Error).message}`)
  process.exit(1)
}

if (config.NODE_ENV === 'production' && config.DATABASE_URL === undefined) {
  app.log.warn('!!! NODE_ENV=production without DATABASE_URL: running on the embedded single-process PGlite database ' +
    `under ${config.DATA_DIR}. Set DATABASE_URL to a Postgres server for production. !!!`)
}

app.server.headersTimeout = HEADERS_TIMEOUT_MS

closeWithGrace({ delay: SHUTDOWN_GRACE_MS, logger: app.log }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'closing after an uncaught error')
  else app.log.info({ signal }, 'shutting down')
  await app.close()
})

try {
  const address = await app.listen({ port: config.PORT, host: config.HOST })
  app.log.info(`API docs at ${address}/docs`)
} catch (error) {
  app.log.fatal({ err: error }, 'could not start')
  await app.close()
  process.exit(1)
}

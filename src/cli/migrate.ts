// `npm run db:migrate`: applies pending migrations to DATABASE_URL, or to the embedded database under DATA_DIR.
// The server migrates at start too; this is for deploys that migrate as a step of their own.
import Fastify from 'fastify'
import { loadConfigOrExit } from '../config.js'
import { openDatabase } from '../db/client.js'
import { loggerOptions } from '../lib/logger.js'

const config = loadConfigOrExit()
// The server's logger settings (levels, redaction), without building the app.
const { log } = Fastify({ logger: loggerOptions(config) })

try {
  // Migrates under the same advisory lock as the servers, so it is safe while instances start.
  const database = await openDatabase(config, log)
  await database.close()
  log.info({ driver: database.driver }, 'migrations applied')
} catch (error) {
  log.fatal({ err: error }, 'migration failed')
  process.exitCode = 1
}

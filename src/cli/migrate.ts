// `npm run db:migrate`: applies pending migrations to DATABASE_URL, or to the embedded database under DATA_DIR.
// The server migrates at start too; this is for deploys that migrate as a step of their own.
import Fastify from 'fastify'
import { ConfigError, loadConfig, loadDotEnv, type Config } from '../config.js'
import { openDatabase } from '../db/client.js'
import { loggerOptions } from '../lib/logger.js'

function readConfig (): Config {
  try {
    loadDotEnv()
    return loadConfig()
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    for (const problem of error.problems) console.error(`config: ${problem}`)
    process.exit(1)
  }
}

const config = readConfig()
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

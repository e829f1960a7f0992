import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, loadDotEnv, type Config } from './config.js'

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
const app = await buildApp(config)

if (config.NODE_ENV === 'production' && config.DATABASE_URL === undefined) {
  app.log.warn('!!! NODE_ENV=production without DATABASE_URL: running on the embedded single-process PGlite database under DATA_DIR. Set DATABASE_URL to a Postgres server for production. !!!')
}

closeWithGrace({ delay: 10_000, logger: app.log }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'closing after an uncaught error')
  else app.log.info({ signal }, 'shutting down')
  await app.close()
})

try {
  await app.listen({ port: config.PORT, host: config.HOST })
  app.log.info(`API docs at http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${config.PORT}/docs`)
} catch (error) {
  app.log.fatal({ err: error }, 'could not start')
  await app.close()
  process.exit(1)
}

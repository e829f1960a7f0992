import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { openDatabase, type Database, type DatabaseOptions, type Db } from '../db/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The drizzle database: node-postgres with DATABASE_URL, embedded PGlite otherwise. */
    db: Db
    database: Database
  }
}

/** Opens the database (migrating it) and closes it last when the app closes. */
export default fp(async function db (app: FastifyInstance, { config, options }: { config: Config, options?: DatabaseOptions }) {
  const database = await openDatabase(config, app.log, options)
  app.decorate('database', database)
  app.decorate('db', database.db)
  app.addHook('onClose', async () => { await database.close() })
}, { name: 'db' })

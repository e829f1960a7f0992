import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import type { DatabaseOptions } from './db/client.js'
import { loggerOptions } from './lib/logger.js'
import { HttpProblem } from './lib/problem.js'
import { schemaController } from './lib/validation.js'
import db from './plugins/db.js'
import docs from './plugins/docs.js'
import errors, { sendProblem } from './plugins/errors.js'
import security, { requestId } from './plugins/security.js'
import service from './service/routes.js'

export interface AppOptions {
  database?: DatabaseOptions
  /** Replaces the configured pino logger (tests pass a stream to read the logs). */
  logger?: FastifyServerOptions['logger']
}

/** JSON bodies are limited to 1 MiB; uploads have their own limit. */
export const BODY_LIMIT = 1_048_576

export async function buildApp (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? loggerOptions(config),
    genReqId: requestId,
    trustProxy: config.TRUST_PROXY.length > 0 ? config.TRUST_PROXY : false,
    bodyLimit: BODY_LIMIT,
    schemaController: schemaController(),
    return503OnClosing: false,
    connectionTimeout: 10_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 72_000,
    routerOptions: { maxParamLength: 200, ignoreTrailingSlash: false },
    frameworkErrors: (error, request, reply) => {
      sendProblem(request, reply, new HttpProblem(400, `The request could not be routed: ${error.message}`))
    }
  }).withTypeProvider<TypeBoxTypeProvider>()

  // Only media types some route documents are parsed; anything else is 415.
  app.removeContentTypeParser('text/plain')

  await app.register(security, { config })
  await app.register(db, { config, options: options.database })
  await app.register(errors)
  await app.register(docs)
  await app.register(service)
  return app
}

import Fastify, { type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import type { DatabaseOptions } from './db/client.js'
import { strictJsonParser } from './lib/json-body.js'
import { AccessLog, loggerOptions, requestLogger, type LogStream } from './lib/logger.js'
import { HttpProblem } from './lib/problem.js'
import { schemaController } from './lib/validation.js'
import { API_PREFIX, commonComponents } from '../schemas/common.js'
import { Scopes } from './auth/scopes.js'
import auth from './auth/plugin.js'
import { liveSessionIds } from './auth/repository.js'
import dashboard from './dashboard/routes.js'
import jobQueue, { type JobsOptions } from './jobs/queue.js'
import { addComponents, registerResources, type ResourceTuning } from './kit/resource.js'
import db from './plugins/db.js'
import docs from './plugins/docs.js'
import errors, { clientErrorHandler, sendProblem } from './plugins/errors.js'
import idempotency from './plugins/idempotency.js'
import loadShedding, { type LoadSheddingOptions } from './plugins/load-shedding.js'
import metrics, { metricsRoute } from './plugins/metrics.js'
import notFound from './plugins/not-found.js'
import nulScan from './plugins/nul-scan.js'
import rateLimit from './plugins/rate-limit.js'
import realtime, { type RealtimeOptions } from './plugins/realtime.js'
import security, { requestId } from './plugins/security.js'
import shutdown from './plugins/shutdown.js'
import unexpectedBody from './plugins/unexpected-body.js'
import { apiResources, serviceResources } from './resources.js'

export interface AppOptions {
  database?: DatabaseOptions
  /** Where log lines go instead of stdout (tests read them); level, redaction and serializers stay. */
  logStream?: LogStream
  /** Overrides the load-shedding thresholds (tests force pressure with them). */
  loadShedding?: LoadSheddingOptions
  /** The import worker: off to only accept imports, smaller batches, a hook after each batch (tests). */
  jobs?: JobsOptions
  /** Intervals and limits of the live channel (tests shorten them). */
  realtime?: RealtimeOptions
  /** Resources' own settings beyond the configuration (tests shorten delays). */
  resources?: ResourceTuning
}

/** JSON bodies are limited to 1 MiB; uploads have their own limit. */
const BODY_LIMIT = 1_048_576

export async function buildApp (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(config, options.logStream),
    childLoggerFactory: requestLogger,
    logController: new AccessLog(),
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
    },
    clientErrorHandler
  }).withTypeProvider<TypeBoxTypeProvider>()

  // Only media types some route documents are parsed; anything else is 415.
  app.removeContentTypeParser('text/plain')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, strictJsonParser(app))

  const contracts = [...apiResources, ...serviceResources].map((entry) => entry.contract)
  const scopes = new Scopes(contracts)
  // Every component at the root, so that any route may refer to any of them; the service's first, as its routes are.
  addComponents(app, [...commonComponents, ...[...serviceResources, ...apiResources].flatMap((entry) => entry.contract.components)])

  await app.register(security, { config })
  await app.register(db, { config, options: options.database })
  await app.register(errors)
  await app.register(notFound)
  await app.register(shutdown)
  // Its hook runs before the NUL scan's: a body no route takes is 415 whatever it holds.
  await app.register(unexpectedBody)
  await app.register(nulScan)
  await app.register(loadShedding, { options: options.loadShedding })
  await app.register(metrics)
  await app.register(auth, { config, scopes })
  await app.register(rateLimit, { config })
  await app.register(idempotency)
  await app.register(jobQueue, { options: options.jobs })
  await app.register(docs, { contracts, scopes: scopes.descriptions() })
  await app.register(realtime, { config, options: options.realtime, liveSessions: liveSessionIds })
  await app.register(metricsRoute)
  const resourceOptions = { config, tuning: options.resources ?? {} }
  await registerResources(app, serviceResources, '', resourceOptions)
  await registerResources(app, apiResources, API_PREFIX, resourceOptions)
  await app.register(dashboard)
  return app
}

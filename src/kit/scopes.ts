import multipart from '@fastify/multipart'
import type { FastifyInstance, FastifySchema, FastifySchemaCompiler, preParsingHookHandler } from 'fastify'
import { strictJsonParser } from '../lib/json-body.js'
import { requireMultipart, streamedBodyValidator, uploadLimits } from '../lib/multipart.js'

/**
 * Route scopes for bodies only some routes take: the parser lives in a child scope with those routes, so every other
 * route refuses such a body with 415 without checking for it. The child scope keeps the parent's type provider
 * (`register` does, though its typing does not say so), hence the casts.
 */

/** Declares the routes that take JSON merge patches (RFC 7396): only they parse `application/merge-patch+json` (like JSON, UTF-8 checked). */
export async function mergePatchRoutes<App extends FastifyInstance> (app: App, declare: (scope: App) => void): Promise<void> {
  await app.register(async (scope) => {
    scope.addContentTypeParser('application/merge-patch+json', { parseAs: 'buffer' }, strictJsonParser(scope))
    declare(scope as App)
  })
}

/** What an upload route adds to its options: refused before it is read when it is not multipart, validated while it streams. */
export interface UploadRouteOptions {
  preParsing: preParsingHookHandler
  validatorCompiler: FastifySchemaCompiler<FastifySchema>
}

/** Declares the routes that take a multipart upload of at most `maxBytes`: only they parse `multipart/form-data`. */
export async function uploadRoutes<App extends FastifyInstance> (app: App, maxBytes: number, declare: (scope: App, upload: UploadRouteOptions) => void): Promise<void> {
  await app.register(async (scope) => {
    await scope.register(multipart, { limits: uploadLimits(maxBytes) })
    declare(scope as App, { preParsing: requireMultipart, validatorCompiler: streamedBodyValidator() })
  })
}

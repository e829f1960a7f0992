import { createHash } from 'node:crypto'
import multipart from '@fastify/multipart'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { getJob, importItems, jobsComponents } from '../../schemas/jobs.js'
import type { Config } from '../config.js'
import { ifNoneMatchFails } from '../lib/conditional.js'
import { assertOwnerOrAdmin } from '../kit/ownership.js'
import { notFound, tooManyRequests } from '../lib/problem.js'
import { currentPrincipal } from '../auth/plugin.js'
import { findJobById, insertImportJob, jobEtag, jobUrl, lockAndCountActiveImports, toJob } from './repository.js'
import { requireMultipart, streamedBodyValidator, uploadLimits } from '../lib/multipart.js'
import { readImportUpload, type ImportUpload } from './upload.js'

/** A guess at when one of a user's imports will have finished, for the `Retry-After` of a 429 past the cap. */
const IMPORT_RETRY_AFTER_SECONDS = 10

/** Item imports (queued, 202) and the jobs that run them. Multipart bodies are accepted on the import route only. */
const jobs: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  for (const schema of jobsComponents) app.addSchema(schema)
  await app.register(multipart, { limits: uploadLimits(config.UPLOAD_MAX_BYTES) })

  // The upload is read once: by the idempotency check when the request has a key, else by the handler.
  const uploads = new WeakMap<FastifyRequest, Promise<ImportUpload>>()
  const upload = (request: FastifyRequest) => {
    let read = uploads.get(request)
    if (read === undefined) uploads.set(request, read = readImportUpload(request, config.UPLOAD_MAX_BYTES))
    return read
  }
  const fingerprint = async (request: FastifyRequest) => {
    const { format, data } = await upload(request)
    return `${format}:${createHash('sha256').update(data).digest('hex')}`
  }

  app.post('/api/v1/items/import', {
    schema: importItems,
    config: { idempotency: { fingerprint } },
    preParsing: requireMultipart,
    validatorCompiler: streamedBodyValidator()
  }, async (request, reply) => {
    const { id: ownerId } = currentPrincipal(request)
    const { format, data } = await upload(request)
    const cap = config.IMPORT_MAX_ACTIVE_PER_USER
    const row = await app.db.transaction(async (tx) => {
      if (await lockAndCountActiveImports(tx, ownerId) >= cap) {
        throw tooManyRequests(`You have ${cap} imports queued or running, the most allowed at once: retry once one has finished`, IMPORT_RETRY_AFTER_SECONDS, 'too-many-imports')
      }
      const created = await insertImportJob(tx, { ownerId, contentType: format, data })
      await app.jobQueue.enqueueImport(tx, created.id)
      return created
    })
    app.jobQueue.wake()
    const job = toJob(row)
    return reply.code(202).header('location', jobUrl(job.id)).header('etag', jobEtag(job)).send(job)
  })

  app.get('/api/v1/jobs/:id', { schema: getJob }, async (request, reply) => {
    const row = await findJobById(app.db, request.params.id)
    if (row === undefined) throw notFound('No job has this id')
    assertOwnerOrAdmin(currentPrincipal(request), row.ownerId, 'items:write')
    const job = toJob(row)
    const etag = jobEtag(job)
    reply.header('etag', etag).header('cache-control', 'private, no-cache')
    if (ifNoneMatchFails(request.headers['if-none-match'], etag)) return reply.code(304).send()
    return job
  })
}

export default jobs

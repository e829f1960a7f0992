import { createHash } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { getJob, importItems } from '../../schemas/jobs.js'
import { ownEntity } from '../kit/ownership.js'
import type { ResourceOptions } from '../kit/resource.js'
import { sendCreated, sendEntity } from '../kit/responses.js'
import { uploadRoutes } from '../kit/scopes.js'
import { tooManyRequests } from '../lib/problem.js'
import { currentPrincipal } from '../auth/plugin.js'
import { findJobById, insertImportJob, jobEtag, jobUrl, lockAndCountActiveImports, toJob } from './repository.js'
import { readImportUpload, type ImportUpload } from './upload.js'

/** A guess at when one of a user's imports will have finished, for the `Retry-After` of a 429 past the cap. */
const IMPORT_RETRY_AFTER_SECONDS = 10

/** Item imports (queued, 202) and the jobs that run them. Multipart bodies are accepted on the import route only. */
const jobs: FastifyPluginAsyncTypebox<ResourceOptions> = async (app, { config }) => {
  // The upload is read once: by the idempotency check when the request has a key, else by the handler.
  const read = new WeakMap<FastifyRequest, Promise<ImportUpload>>()
  const importFile = (request: FastifyRequest) => {
    let file = read.get(request)
    if (file === undefined) read.set(request, file = readImportUpload(request, config.UPLOAD_MAX_BYTES))
    return file
  }
  const fingerprint = async (request: FastifyRequest) => {
    const { format, data } = await importFile(request)
    return `${format}:${createHash('sha256').update(data).digest('hex')}`
  }

  await uploadRoutes(app, config.UPLOAD_MAX_BYTES, (uploads, upload) => {
    uploads.post('/items/import', { schema: importItems, config: { idempotency: { fingerprint } }, ...upload }, async (request, reply) => {
      const { id: ownerId } = currentPrincipal(request)
      const { format, data } = await importFile(request)
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
      return sendCreated(reply, jobUrl(job.id), jobEtag(job), job, 202)
    })
  })

  app.get('/jobs/:id', { schema: getJob }, async (request, reply) => {
    const row = ownEntity(request, await findJobById(app.db, request.params.id), 'job', 'items:write')
    const job = toJob(row)
    return sendEntity(request, reply.header('cache-control', 'private, no-cache'), jobEtag(job), job)
  })
}

export default jobs

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import {
  createWebhook, deleteWebhook, getWebhook, listWebhookDeliveries, listWebhooks, retryWebhookDelivery, rotateWebhookSecret, updateWebhook,
  type WebhookCreate
} from '../../schemas/webhooks.js'
import { currentPrincipal } from '../auth/plugin.js'
import type { Executor } from '../db/client.js'
import { assertOwnerOrAdmin } from '../kit/ownership.js'
import type { ResourceOptions } from '../kit/resource.js'
import { found, sendCreated, sendEntity, sendPage } from '../kit/responses.js'
import { mergePatchRoutes } from '../kit/scopes.js'
import { writeAtVersion, type ConditionalWrite } from '../kit/write.js'
import { CursorCodec } from '../lib/pagination.js'
import { badRequest, conflict } from '../lib/problem.js'
import { checkTargetUrl, UnsafeTargetError } from './address.js'
import { DELIVERY_QUEUE, type DeliveryJob } from './delivery.js'
import { startDeliveries } from './engine.js'
import * as repository from './repository.js'
import { SecretBox } from './sealing.js'
import { newSecret } from './signing.js'

const SCOPE = 'webhooks'

/** Outgoing webhooks: endpoints, their secrets and deliveries. */
const webhooks: FastifyPluginAsyncTypebox<ResourceOptions> = async (app, { config, tuning }) => {
  const cursors = new CursorCodec(app.deriveKey('cursor'))
  const secrets = new SecretBox(app.deriveKey('webhook-secrets'))
  const target = { allowPrivate: config.WEBHOOK_ALLOW_PRIVATE_TARGETS, requireHttps: config.NODE_ENV === 'production' && !config.WEBHOOK_ALLOW_PRIVATE_TARGETS }
  startDeliveries(app, config, secrets, tuning.webhooks)

  /** The URL and topics of an endpoint of `ownerId`: a safe target, and only topics its owner may follow. */
  const checkEndpoint = async (ownerId: string, { url, topics }: Partial<WebhookCreate>) => {
    const foreign = (topics ?? []).findIndex((topic) => topic.startsWith('user:') && topic !== `user:${ownerId}`)
    if (foreign !== -1) throw badRequest('Only its owner\'s private topic may be followed', { errors: [{ in: 'body', path: `/topics/${foreign}`, message: 'is another user\'s private topic' }] })
    if (url === undefined) return
    await checkTargetUrl(url, target).catch((error: unknown) => {
      if (!(error instanceof UnsafeTargetError)) throw error
      throw badRequest(`The URL is refused: ${error.message}`, { code: 'unsafe-webhook-url', errors: [{ in: 'body', path: '/url', message: error.message }] })
    })
  }
  const readable = async (request: FastifyRequest, id: string) => {
    const row = found(await repository.findWebhook(app.db, id), 'No webhook has this id')
    assertOwnerOrAdmin(currentPrincipal(request), row.ownerId, SCOPE)
    return row
  }
  const webhookWrite = (db: Executor, id: string): Omit<ConditionalWrite<repository.WebhookRow, never>, 'write'> => ({
    entity: 'webhook', scope: SCOPE, load: () => repository.findWebhook(db, id), describe: (row) => ({ etag: repository.webhookEtag(row), ownerId: row.ownerId })
  })
  const withSecret = (row: repository.WebhookRow, secret: string) => ({ ...repository.toWebhook(row), secret })

  app.post('/webhooks', { schema: createWebhook }, async (request, reply) => {
    const { id } = currentPrincipal(request)
    await checkEndpoint(id, request.body)
    const secret = newSecret()
    const row = await repository.insertWebhook(app.db, id, request.body, secrets.seal(secret))
    return sendCreated(reply, repository.webhookUrl(row.id), repository.webhookEtag(row), withSecret(row, secret))
  })

  app.get('/webhooks', { schema: listWebhooks }, async (request, reply) => {
    const page = await repository.listWebhooks(app.db, cursors, currentPrincipal(request).id, request.query)
    return sendPage(request, reply, page, repository.toWebhook)
  })

  app.get('/webhooks/:id', { schema: getWebhook }, async (request, reply) => {
    const row = await readable(request, request.params.id)
    return sendEntity(request, reply, repository.webhookEtag(row), repository.toWebhook(row))
  })

  await mergePatchRoutes(app, (patches) => {
    patches.patch('/webhooks/:id', { schema: updateWebhook }, async (request, reply) => {
      const row = await writeAtVersion(request, {
        ...webhookWrite(app.db, request.params.id),
        write: async (current) => {
          await checkEndpoint(current.ownerId, request.body)
          // Turning an endpoint back on forgets why it was turned off.
          const revived = request.body.active === true && !current.active ? { disabledReason: null, failures: 0 } : {}
          return await repository.updateWebhookAtVersion(app.db, current.id, current.version, { ...request.body, ...revived })
        }
      })
      return sendEntity(request, reply, repository.webhookEtag(row), repository.toWebhook(row))
    })
  })

  app.delete('/webhooks/:id', { schema: deleteWebhook }, async (request, reply) => {
    await writeAtVersion(request, {
      ...webhookWrite(app.db, request.params.id),
      write: async (current) => (await repository.deleteWebhookAtVersion(app.db, current.id, current.version)) ? true : undefined
    })
    return reply.code(204).send()
  })

  app.post('/webhooks/:id/secret', { schema: rotateWebhookSecret }, async (request, reply) => {
    const secret = newSecret()
    const row = await writeAtVersion(request, {
      ...webhookWrite(app.db, request.params.id),
      write: (current) => repository.updateWebhookAtVersion(app.db, current.id, current.version, { secret: secrets.seal(secret) })
    })
    return sendEntity(request, reply, repository.webhookEtag(row), withSecret(row, secret))
  })

  app.get('/webhooks/:id/deliveries', { schema: listWebhookDeliveries }, async (request, reply) => {
    const row = await readable(request, request.params.id)
    return sendPage(request, reply, await repository.listDeliveries(app.db, cursors, row.id, request.query), repository.toDelivery)
  })

  app.post('/webhooks/:id/deliveries/:deliveryId/retry', { schema: retryWebhookDelivery }, async (request, reply) => {
    const row = await readable(request, request.params.id)
    const delivery = found(await repository.findDelivery(app.db, row.id, request.params.deliveryId), 'This webhook has no delivery with this id')
    if (!row.active) throw conflict('The webhook is inactive: turn it on (PATCH active: true) first', { code: 'webhook-inactive' })
    const { eventId, event, payload } = delivery
    await app.jobQueue.send(undefined, DELIVERY_QUEUE, { webhookId: row.id, eventId, event, payload, attempt: 1 } satisfies DeliveryJob)
    app.jobQueue.wake()
    return reply.code(202).send()
  })
}

export default webhooks

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import {
  createWebhook, deleteWebhook, getWebhook, listWebhookDeliveries, listWebhooks, retryWebhookDelivery, rotateWebhookSecret, updateWebhook
} from '../../schemas/webhooks.js'
import { currentPrincipal } from '../auth/plugin.js'
import { ownEntity } from '../kit/ownership.js'
import type { ResourceOptions } from '../kit/resource.js'
import { found, sendCreated, sendEntity, sendPage } from '../kit/responses.js'
import { mergePatchRoutes } from '../kit/scopes.js'
import { conditionalWrites } from '../kit/write.js'
import { CursorCodec } from '../lib/pagination.js'
import { conflict } from '../lib/problem.js'
import { DELIVERY_QUEUE, redelivery } from './delivery.js'
import { endpointRules } from './endpoints.js'
import { startDeliveries } from './engine.js'
import * as repository from './repository.js'
import { SecretBox } from './sealing.js'
import { newSecret } from './signing.js'

const SCOPE = 'webhooks'

/** Outgoing webhooks: endpoints, their secrets and deliveries. */
const webhooks: FastifyPluginAsyncTypebox<ResourceOptions> = async (app, { config, tuning }) => {
  const cursors = new CursorCodec(app.deriveKey('cursor'))
  const secrets = new SecretBox(app.deriveKey('webhook-secrets'))
  const checkEndpoint = endpointRules(config)
  startDeliveries(app, config, secrets, tuning.webhooks)

  const readable = async (request: FastifyRequest, id: string) => ownEntity(request, await repository.findWebhook(app.db, id), 'webhook', SCOPE)
  const writeWebhook = conditionalWrites('webhook', SCOPE, async (id: string) => await repository.findWebhook(app.db, id), repository.webhookEtag)
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
      const row = await writeWebhook(request, request.params.id, async (current) => {
        await checkEndpoint(current.ownerId, request.body)
        // Turning an endpoint back on forgets why it was turned off.
        const revived = request.body.active === true && !current.active ? { disabledReason: null, failures: 0 } : {}
        return await repository.updateWebhookAtVersion(app.db, current.id, current.version, { ...request.body, ...revived })
      })
      return sendEntity(request, reply, repository.webhookEtag(row), repository.toWebhook(row))
    })
  })

  app.delete('/webhooks/:id', { schema: deleteWebhook }, async (request, reply) => {
    await writeWebhook(request, request.params.id, async (current) =>
      (await repository.deleteWebhookAtVersion(app.db, current.id, current.version)) ? true : undefined)
    return reply.code(204).send()
  })

  app.post('/webhooks/:id/secret', { schema: rotateWebhookSecret }, async (request, reply) => {
    const secret = newSecret()
    const row = await writeWebhook(request, request.params.id, (current) =>
      repository.updateWebhookAtVersion(app.db, current.id, current.version, { secret: secrets.seal(secret) }))
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
    await app.jobQueue.send(undefined, DELIVERY_QUEUE, redelivery(delivery))
    app.jobQueue.wake(DELIVERY_QUEUE)
    return reply.code(202).send()
  })
}

export default webhooks

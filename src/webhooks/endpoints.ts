import type { WebhookCreate } from '../../schemas/webhooks.js'
import type { Config } from '../config.js'
import { badRequest } from '../lib/problem.js'
import { checkTargetUrl, UnsafeTargetError } from './address.js'

/**
 * The rules of an endpoint's URL and topics, as given at creation or in a change: a URL that is a safe target (public
 * addresses only, and https in production, unless private targets are allowed), and only topics its owner may follow.
 */
export function endpointRules (config: Config) {
  const target = { allowPrivate: config.WEBHOOK_ALLOW_PRIVATE_TARGETS, requireHttps: config.NODE_ENV === 'production' && !config.WEBHOOK_ALLOW_PRIVATE_TARGETS }
  return async (ownerId: string, { url, topics }: Partial<WebhookCreate>): Promise<void> => {
    const foreign = (topics ?? []).findIndex((topic) => topic.startsWith('user:') && topic !== `user:${ownerId}`)
    if (foreign !== -1) {
      throw badRequest('Only its owner\'s private topic may be followed', { errors: [{ in: 'body', path: `/topics/${foreign}`, message: 'is another user\'s private topic' }] })
    }
    if (url === undefined) return
    await checkTargetUrl(url, target).catch((error: unknown) => {
      if (!(error instanceof UnsafeTargetError)) throw error
      throw badRequest(`The URL is refused: ${error.message}`, { code: 'unsafe-webhook-url', errors: [{ in: 'body', path: '/url', message: error.message }] })
    })
  }
}

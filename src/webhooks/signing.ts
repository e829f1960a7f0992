import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import { packageInfo } from '../paths.js'

const USER_AGENT = `${packageInfo.name}-webhooks/${packageInfo.version}`

/** A signing secret as Standard Webhooks writes it: `whsec_` then the base64 of 32 random bytes. */
export function newSecret (): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}

/**
 * The headers of one delivery of `payload` (the exact JSON text that is sent), signed with `secret` as Standard
 * Webhooks says: `webhook-id` (the same for every attempt of a message, so receivers can drop duplicates),
 * `webhook-timestamp` (unix seconds) and `webhook-signature` (`v1,` then the base64 HMAC-SHA256).
 */
export function signedHeaders (secret: string, messageId: string, timestamp: Date, payload: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    'webhook-id': messageId,
    'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(messageId, timestamp, payload)
  }
}

import type { DeliveryResult } from './client.js'

/**
 * Attempts of one delivery before it is given up as failed. With the default backoff the nine waits between them add up
 * to between about 2 h 8 min and 4 h 15 min, long enough to outlast a receiver's deploy or a short outage.
 */
export const MAX_ATTEMPTS = 10

/**
 * An endpoint is disabled after this many deliveries in a row ended `failed` (their retries exhausted, or an answer that
 * is not retried, such as 404 or a redirect); any delivered one starts the count again. Counting deliveries rather than
 * attempts means an outage shorter than the retries (at least about 2 h) disables nothing, however busy the endpoint,
 * while an endpoint that has gone for good is disabled after a few events instead of being retried forever.
 */
export const DISABLE_AFTER_FAILURES = 5

export type Outcome = 'delivered' | 'retry' | 'failed'

/**
 * What an attempt means for its delivery: a 2xx is delivered; timeouts, connection failures, 5xx, 429 and 408 are
 * worth another attempt; a refused (unsafe) target and every other status, redirects included (they are never
 * followed), fail at once: sending the same request again would get the same answer.
 */
export function classify (result: DeliveryResult): Outcome {
  if (result.refused) return 'failed'
  const { status } = result
  if (status === null) return 'retry'
  if (status >= 200 && status < 300) return 'delivered'
  if (status >= 500 || status === 429 || status === 408) return 'retry'
  return 'failed'
}

export interface BackoffOptions {
  /** The longest first wait (default 30 s); each later attempt doubles it. */
  baseMs?: number
  /** No wait is longer (default 6 h), Retry-After included. */
  maxMs?: number
  /** A number in [0, 1) (default Math.random). */
  random?: () => number
}

/**
 * How long to wait after failed attempt number `attempt` (1 for the first) before the next: exponential backoff with
 * jitter, uniformly between half and all of base·2^(attempt−1), capped at `maxMs`; the jitter spreads the retries of
 * many deliveries that failed together. Never earlier than the receiver's Retry-After, itself capped at `maxMs`.
 */
export function retryDelayMs (attempt: number, retryAfterMs: number | null, options: BackoffOptions = {}): number {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError(`attempt must be a whole number from 1 (got ${attempt})`)
  const { baseMs = 30_000, maxMs = 6 * 3_600_000, random = Math.random } = options
  const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1))
  const backoff = Math.round(ceiling / 2 + random() * (ceiling / 2))
  return retryAfterMs === null ? backoff : Math.max(backoff, Math.min(retryAfterMs, maxMs))
}

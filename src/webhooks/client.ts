import { isIP } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { Readable } from 'node:stream'
import { Agent, buildConnector } from 'undici'
import { guardedLookup, isPublicAddress, UnsafeTargetError } from './address.js'

/** What one attempt to deliver a webhook came to. */
export interface DeliveryResult {
  /** The receiver's status code; null when no response arrived. */
  status: number | null
  durationMs: number
  /** Why no response arrived, for the endpoint's owner (`timed out after 10000 ms`); null when one did. */
  error: string | null
  /** The receiver's Retry-After on a 429 or 503, in milliseconds, at most an hour. */
  retryAfterMs: number | null
  /** The start of the response body (up to `maxResponseBytes`) as text; null when no response arrived. */
  responseBody: string | null
  /** The target itself was refused (a non-public address, or not an http(s) URL): no retry can succeed. */
  refused: boolean
}

export interface DeliveryClientOptions {
  /** Connect to loopback and private addresses too (WEBHOOK_ALLOW_PRIVATE_TARGETS). */
  allowPrivate: boolean
  /** Default 5000. */
  connectTimeoutMs?: number
  /** The whole attempt, from connecting to the end of the response (default 10000). */
  timeoutMs?: number
  /** Default 65536; the rest of a response body is not read. */
  maxResponseBytes?: number
  /** Connections kept per origin (default 10). */
  connections?: number
}

export interface DeliveryClient {
  /** POSTs `body` to `url`. Never throws: every failure is a DeliveryResult. */
  post: (url: string, body: string, headers: Record<string, string>) => Promise<DeliveryResult>
  /** Waits for the posts under way, then closes every connection. */
  close: () => Promise<void>
}

const MAX_RETRY_AFTER_MS = 3_600_000
const MAX_ERROR_LENGTH = 300

/** undici and Node error codes, as the endpoint's owner would want to read them. */
const CONNECTION_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset before a response',
  UND_ERR_SOCKET: 'connection closed before a response',
  EPIPE: 'connection closed before a response',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host could not be resolved (temporary DNS failure)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable'
}

/**
 * The HTTP client of webhook deliveries: one pool of keep-alive connections per receiver origin. Redirects are never
 * followed (a 3xx is the answer), only the start of a response body is read, and every connection is checked against
 * the SSRF rules as it is made, so a name that now resolves to a private address (DNS rebinding) is refused.
 */
export function createDeliveryClient (options: DeliveryClientOptions): DeliveryClient {
  const { allowPrivate, connectTimeoutMs = 5000, timeoutMs = 10_000, maxResponseBytes = 65_536, connections = 10 } = options
  const connectGuarded = buildConnector({ timeout: connectTimeoutMs, lookup: guardedLookup(allowPrivate) })
  const agent = new Agent({
    connections,
    // Each phase may take the whole deadline; the deadline itself (an abort signal) bounds their sum.
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect (target, callback) {
      // net.connect calls no `lookup` for an IP literal, so the guard would never see it.
      if (!allowPrivate && isIP(target.hostname) !== 0 && !isPublicAddress(target.hostname)) {
        callback(UnsafeTargetError.forHost(target.hostname), null)
        return
      }
      connectGuarded(target, callback)
    }
  })

  const failure = (started: number, error: string, refused: boolean): DeliveryResult =>
    ({ status: null, durationMs: elapsedSince(started), error, retryAfterMs: null, responseBody: null, refused })

  function describe (error: unknown): string {
    if (!(error instanceof Error)) return String(error).slice(0, MAX_ERROR_LENGTH)
    const { code } = error as NodeJS.ErrnoException
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return `timed out after ${timeoutMs} ms`
    if (code === 'UND_ERR_CONNECT_TIMEOUT') return `could not connect within ${connectTimeoutMs} ms`
    if (code !== undefined && CONNECTION_ERRORS[code] !== undefined) return CONNECTION_ERRORS[code]
    return (code === undefined ? error.message : `${error.message} (${code})`).slice(0, MAX_ERROR_LENGTH)
  }

  async function post (url: string, body: string, headers: Record<string, string>): Promise<DeliveryResult> {
    const started = performance.now()
    let target: URL
    try {
      target = new URL(url)
    } catch {
      return failure(started, 'not a valid URL', true)
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:') return failure(started, `not an http or https URL (${target.protocol.slice(0, -1)})`, true)

    const deadline = new AbortController()
    const timer = setTimeout(() => { deadline.abort() }, timeoutMs)
    try {
      const response = await agent.request({
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: 'POST',
        headers,
        body,
        signal: deadline.signal
      })
      const responseBody = await readStart(response.body, maxResponseBytes)
      return {
        status: response.statusCode,
        durationMs: elapsedSince(started),
        error: null,
        retryAfterMs: retryAfter(response.statusCode, response.headers['retry-after']),
        responseBody,
        refused: false
      }
    } catch (error) {
      if (deadline.signal.aborted) return failure(started, `timed out after ${timeoutMs} ms`, false)
      if (error instanceof UnsafeTargetError) return failure(started, error.message, true)
      return failure(started, describe(error), false)
    } finally {
      clearTimeout(timer)
    }
  }

  return { post, close: () => agent.close() }
}

const elapsedSince = (started: number) => Math.round(performance.now() - started)

/**
 * The first `limit` bytes of `body` as text; the rest is never read (leaving the loop destroys the stream, and with it
 * the connection). A body cut short, by the deadline or the receiver, gives what arrived: the status is the answer.
 */
async function readStart (body: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of body) {
      const piece = (chunk as Buffer).subarray(0, limit - size)
      chunks.push(piece)
      size += piece.length
      if (size >= limit) break
    }
  } catch {
    // Keep what arrived before the body failed.
  }
  // `stream: true` holds back a character cut in half at the limit instead of printing it as U+FFFD; Postgres text
  // cannot hold NUL, and this text is stored.
  return new TextDecoder().decode(Buffer.concat(chunks), { stream: true }).replaceAll('\u0000', '\uFFFD')
}

/** Retry-After (seconds, or an HTTP date) of a 429 or 503, in milliseconds from now, at most an hour. */
function retryAfter (status: number, header: string | string[] | undefined): number | null {
  if (status !== 429 && status !== 503) return null
  const value = (Array.isArray(header) ? header[0] : header)?.trim()
  if (value === undefined || value === '') return null
  const ms = /^[0-9]+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - Date.now()
  return Number.isNaN(ms) ? null : Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms))
}

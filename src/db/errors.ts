import { DrizzleQueryError } from 'drizzle-orm/errors'
import { sqlState } from '../lib/sql-state.js'

/**
 * SQLSTATEs of a database that cannot serve now: its connection failed (class 08), it is shutting down or
 * starting (57P01–57P03), it has no room for another client (53300), or it became read-only in a failover (25006).
 */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '25006'])
/** Socket errors of a connection that could not be made or was lost. */
const SOCKET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])
/** node-postgres reports a lost, timed-out or unusable connection by message only, without a code. */
const CONNECTION_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Client was closed and is not queryable)/

/** Whether `error` (or what it wraps) says the database cannot be reached now, rather than that the query is wrong. */
export function databaseUnavailable (error: unknown): boolean {
  let current: unknown = error
  for (let depth = 0; depth < 10 && current instanceof Error; depth++) {
    const state = sqlState(current)
    if (state !== undefined) return state.startsWith('08') || UNAVAILABLE_STATES.has(state)
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && SOCKET_ERRORS.has(code)) return true
    if (CONNECTION_MESSAGES.test(current.message)) return true
    current = current.cause
  }
  return false
}

/** The constraint a Postgres error names (an integrity violation), raw from the driver or wrapped by drizzle. */
export function violatedConstraint (error: unknown): string | undefined {
  const source = error instanceof DrizzleQueryError ? error.cause : error
  const constraint = (source as { constraint?: unknown } | undefined)?.constraint
  return typeof constraint === 'string' ? constraint : undefined
}

import { DrizzleQueryError } from 'drizzle-orm/errors'

// A SQLSTATE's class starts with a digit or F, H, P, X; errno codes such as EPIPE never match.
const SQLSTATE = /^[0-9FHPX][0-9A-Z]{4}$/

/**
 * The SQLSTATE of a Postgres error, raw from the driver or wrapped by drizzle. In lib, not db: the logger reads it
 * to keep query text out of the log.
 */
export function sqlState (error: unknown): string | undefined {
  const source = (error instanceof DrizzleQueryError ? error.cause : error) as { code?: unknown } | undefined
  return typeof source?.code === 'string' && SQLSTATE.test(source.code) ? source.code : undefined
}

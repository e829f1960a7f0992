import type { FastifyServerOptions } from 'fastify'
import { DrizzleQueryError } from 'drizzle-orm/errors'
import { err as serializeErr } from 'pino-std-serializers'
import type { Config } from '../config.js'

type PgErrorFields = { code?: unknown, constraint?: string, table?: string, column?: string, routine?: string }

/** The SQLSTATE of a Postgres error, raw from the driver or wrapped by drizzle. */
export function sqlState (error: unknown): string | undefined {
  const source = (error instanceof DrizzleQueryError ? error.cause : error) as PgErrorFields | undefined
  return typeof source?.code === 'string' && /^[0-9A-Z]{5}$/.test(source.code) ? source.code : undefined
}

/**
 * Database errors carry their SQL parameters (emails, hashes) in their text.
 * Log what identifies the failure (SQLSTATE, constraint, stack), never the text.
 */
export function serializeError (error: Error): { type: string, message: string, stack: string, [key: string]: unknown } {
  const code = sqlState(error)
  if (!(error instanceof DrizzleQueryError) && code === undefined) return serializeErr(error)
  const fields = (error instanceof DrizzleQueryError ? error.cause : error) as PgErrorFields | undefined
  return {
    type: 'DatabaseError',
    message: `database error ${code ?? 'without SQLSTATE'}`,
    code,
    constraint: fields?.constraint,
    table: fields?.table,
    column: fields?.column,
    routine: fields?.routine,
    stack: (error.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at ')).join('\n')
  }
}

/** Masks `access_token` query values (WebSocket clients pass their token there). */
export const redactUrl = (url: string) => url.replace(/([?&]access_token=)[^&#]*/gi, '$1[Redacted]')

export function loggerOptions (config: Config): NonNullable<FastifyServerOptions['logger']> {
  return {
    level: config.LOG_LEVEL,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["sec-websocket-protocol"]', '*.password', '*.currentPassword', '*.newPassword', '*.refresh_token', '*.access_token'],
      censor: '[Redacted]'
    },
    serializers: {
      err: serializeError,
      req: (request: { method: string, url: string, ip?: string, headers: Record<string, unknown> }) => ({
        method: request.method,
        url: redactUrl(request.url),
        remoteAddress: request.ip,
        userAgent: request.headers['user-agent']
      })
    }
  }
}

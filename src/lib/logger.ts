import type { FastifyServerOptions } from 'fastify'
import { DrizzleQueryError } from 'drizzle-orm/errors'
import { err as serializeErr } from 'pino-std-serializers'
import type { Config } from '../config.js'

type PgErrorFields = { code?: unknown, constraint?: string, table?: string, column?: string, routine?: string }

// A SQLSTATE's class starts with a digit or F, H, P, X; errno codes such as EPIPE never match.
const SQLSTATE = /^[0-9FHPX][0-9A-Z]{4}$/

/** The SQLSTATE of a Postgres error, raw from the driver or wrapped by drizzle. */
export function sqlState (error: unknown): string | undefined {
  const source = (error instanceof DrizzleQueryError ? error.cause : error) as PgErrorFields | undefined
  return typeof source?.code === 'string' && SQLSTATE.test(source.code) ? source.code : undefined
}

const isDatabaseError = (error: unknown): boolean =>
  error instanceof DrizzleQueryError || (error instanceof Error && sqlState(error) !== undefined)

/** The first database error in a chain of causes (a wrapper's `cause` carries the driver's text too). */
function databaseErrorIn (error: Error): Error | undefined {
  let current: unknown = error
  for (let depth = 0; depth < 10 && current instanceof Error; depth++) {
    if (isDatabaseError(current)) return current
    current = current.cause
  }
  return undefined
}

/**
 * Database errors carry their SQL parameters (emails, hashes) in their text, and so does
 * any error wrapping one as its `cause`. Log what identifies the failure (SQLSTATE,
 * constraint, stack frames), never that text.
 */
function serializeError (error: Error): { type: string, message: string, stack: string, [key: string]: unknown } {
  const database = databaseErrorIn(error)
  if (database === undefined) return serializeErr(error)
  const code = sqlState(database)
  const fields = (database instanceof DrizzleQueryError ? database.cause : database) as PgErrorFields | undefined
  const summary = `database error ${code ?? 'without SQLSTATE'}`
  return {
    type: database === error ? 'DatabaseError' : error.name,
    message: database === error ? summary : `${error.message} (caused by ${summary})`,
    code,
    constraint: fields?.constraint,
    table: fields?.table,
    column: fields?.column,
    routine: fields?.routine,
    // The first line of a stack repeats the message: keep only the frames.
    stack: (error.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at ')).join('\n')
  }
}

/** Masks `access_token` query values (WebSocket clients pass their token there). */
const redactUrl = (url: string) => url.replace(/([?&]access_token=)[^&#]*/gi, '$1[Redacted]')

const SECRET_FIELDS = ['password', 'currentPassword', 'newPassword', 'refresh_token', 'refreshToken', 'access_token', 'accessToken', 'client_secret', 'token']

/** Where log lines go instead of stdout (tests read them). */
export interface LogStream { write (line: string): void }

/** pino options: level from config, secrets redacted, errors and requests serialized safely. */
export function loggerOptions (config: Config, stream?: LogStream): NonNullable<FastifyServerOptions['logger']> {
  return {
    level: config.LOG_LEVEL,
    ...(stream === undefined ? {} : { stream }),
    redact: {
      paths: [
        'req.headers.authorization', 'req.headers.cookie', 'req.headers["sec-websocket-protocol"]',
        'headers.authorization', 'headers.cookie', '*.headers.authorization', '*.headers.cookie',
        ...SECRET_FIELDS.flatMap((field) => [field, `*.${field}`])
      ],
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

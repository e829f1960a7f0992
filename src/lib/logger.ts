import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import { DrizzleQueryError } from 'drizzle-orm/errors'
import { err as serializeErr } from 'pino-std-serializers'
import type { Config } from '../config.js'
import { sqlState } from './sql-state.js'

type PgErrorFields = { constraint?: string, table?: string, column?: string, routine?: string }

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

type LogMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
type Bindings = Parameters<FastifyBaseLogger['child']>[0]
type ChildLoggerOptions = NonNullable<Parameters<FastifyBaseLogger['child']>[1]>
/** Fastify's logger is pino, which says whether a level is enabled. */
type Logger = FastifyBaseLogger & { isLevelEnabled: (level: LogMethod) => boolean }

/**
 * A request's logger, made when the request first logs at an enabled level: pino's `child` renders and redacts its
 * bindings at once, which costs a request that logs nothing (most do, below `info`) more than a liveness probe's work.
 */
class RequestLogger {
  private made: Logger | undefined

  constructor (private readonly parent: Logger, private readonly bindings: Bindings, private readonly options: ChildLoggerOptions) {}

  private get logger (): Logger {
    this.made ??= this.parent.child(this.bindings, this.options) as Logger
    return this.made
  }

  get level (): string { return this.made?.level ?? this.parent.level }
  set level (level: string) { this.logger.level = level }

  private write (method: LogMethod, args: unknown[]): void {
    if (this.made === undefined && !this.parent.isLevelEnabled(method)) return
    // pino's overloads (an object or a message first) are one signature at run time.
    (this.logger[method] as (...values: unknown[]) => void)(...args)
  }

  fatal (...args: unknown[]): void { this.write('fatal', args) }
  error (...args: unknown[]): void { this.write('error', args) }
  warn (...args: unknown[]): void { this.write('warn', args) }
  info (...args: unknown[]): void { this.write('info', args) }
  debug (...args: unknown[]): void { this.write('debug', args) }
  trace (...args: unknown[]): void { this.write('trace', args) }
  silent (): void {}
  child (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger { return this.logger.child(bindings, options) }
}

/** Fastify's `childLoggerFactory`: each request's logger is a `RequestLogger` (one with a level of its own is made at once). */
export const requestLogger: NonNullable<FastifyServerOptions['childLoggerFactory']> = (logger, bindings, options) =>
  options.level === undefined
    ? new RequestLogger(logger as Logger, bindings, options) as unknown as FastifyBaseLogger
    : logger.child(bindings, options)

/**
 * One line per request, when it has been answered, with its method, URL, status and time: Fastify's default logs
 * two (one as it arrives). It goes through the app's logger with the request id, so the request's own is not made.
 */
export class AccessLog extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const log = request.server.log as Logger
    if (error !== null && error !== undefined) {
      log.error({ reqId: request.id, req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
    } else if (log.isLevelEnabled('info')) {
      log.info({ reqId: request.id, req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
    }
  }
}

import { Type, type StaticDecode } from '@sinclair/typebox'

const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
// A whole number above zero, then its unit.
const durationPattern = '^0*[1-9][0-9]{0,8}(ms|s|m|h|d)$'

/**
 * A duration with a required unit (`900s`, `15m`, `30d`), decoded to milliseconds, at most
 * `maximumMs` (checked after decoding: a date past JavaScript's range, or a timeout past 2³¹ ms, is refused).
 */
const Duration = (fallback: string, description: string, maximumMs: number) =>
  Type.Transform(Type.String({
    pattern: durationPattern,
    default: fallback,
    maximumMs,
    description: `${description}; a number with a unit: ms, s, m, h or d`,
    errorMessage: 'must be a positive whole number with a unit: ms, s, m, h or d (e.g. 900s, 15m, 30d)'
  }))
    .Decode((value) => {
      const [, amount = '0', unit = 'ms'] = /^([0-9]+)([a-z]+)$/.exec(value) ?? []
      return Number(amount) * units[unit as keyof typeof units]
    })
    .Encode((ms) => `${ms}ms`)

/** A comma-separated list, decoded to its trimmed, non-empty entries. */
const CommaList = (description: string) =>
  Type.Transform(Type.String({ default: '', description }))
    .Decode((value) => value.split(',').map((entry) => entry.trim()).filter(Boolean))
    .Encode((list) => list.join(','))

const Count = (fallback: number, description: string, maximum = 1_000_000) =>
  Type.Integer({ minimum: 1, maximum, default: fallback, description })

export const ConfigSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'development', description: '`production` enables the production safety checks' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'Port to listen on' }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Address to listen on' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', errorMessage: 'must be a postgres:// or postgresql:// URL', description: 'Postgres URL; unset means embedded PGlite under DATA_DIR' })),
  DATA_DIR: Type.String({ minLength: 1, default: './data', description: 'Embedded database and other local state' }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://', errorMessage: 'must be a redis:// or rediss:// URL', description: 'Shared rate-limit store for several instances' })),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32, description: 'HMAC secret for access tokens and cursors; every instance shares it' })),
  ACCESS_TOKEN_TTL: Duration('15m', 'Access token lifetime, at most 1d', 86_400_000),
  REFRESH_TOKEN_TTL: Duration('30d', 'Refresh token lifetime, at most 365d', 365 * 86_400_000),
  RATE_LIMIT_PER_MINUTE: Count(100, 'Requests per client per minute'),
  RATE_LIMIT_PER_HOUR: Count(1000, 'Requests per client per hour'),
  AUTH_RATE_LIMIT_PER_MINUTE: Count(10, 'Token requests per (IP, username) pair per minute'),
  CORS_ORIGINS: CommaList('Allowed CORS origins, comma separated'),
  UPLOAD_MAX_BYTES: Count(5_242_880, 'Largest accepted upload in bytes', 1_073_741_824),
  IMPORT_MAX_ACTIVE_PER_USER: Count(3, 'Imports one user may have queued or running at once (429 past it)', 1000),
  TRUST_PROXY: CommaList('Proxy addresses or CIDRs whose X-Forwarded-For is believed'),
  DB_POOL_MAX: Count(10, 'Postgres pool size', 1000),
  DB_STATEMENT_TIMEOUT: Duration('5s', 'Postgres per-statement time limit, at most 24h', 86_400_000),
  DB_CONNECT_TIMEOUT: Duration('1s', 'How long a request waits for a Postgres connection before answering 503, at most 1m', 60_000),
  JWT_ISSUER: Type.String({ minLength: 1, maxLength: 200, default: 'catalog-api', description: 'Access token `iss`' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, maxLength: 200, default: 'catalog-api', description: 'Access token `aud`' }),
  ALLOW_SIGNUP: Type.Boolean({ default: true, description: 'Whether anyone may sign up' }),
  WEBHOOK_ALLOW_PRIVATE_TARGETS: Type.Boolean({ default: false, description: 'Whether webhook URLs may point to loopback, private, link-local or metadata addresses' }),
  FIRST_SUPERUSER_EMAIL: Type.Optional(Type.String({ pattern: '^[^@\\s]+@[^@\\s]+$', maxLength: 254, errorMessage: 'must be an email address', description: 'Superuser created at start when none exists' })),
  FIRST_SUPERUSER_PASSWORD: Type.Optional(Type.String({ minLength: 8, maxLength: 128, description: 'Password of that superuser' })),
  EVENTS_RETENTION: Duration('24h', 'How long events stay replayable (`since`, `Last-Event-ID`), at most 30d', 30 * 86_400_000),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)), { default: 'info', description: 'pino log level' })
})

export type Config = StaticDecode<typeof ConfigSchema>

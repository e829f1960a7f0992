import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

/** The problems a configuration is refused with, or [] when it loads. */
function problemsOf (env: Record<string, string>): string[] {
  try {
    loadConfig(env)
    return []
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
}

t.test('config: defaults from an empty environment', async (t) => {
  const config = loadConfig({})
  t.match(config, {
    NODE_ENV: 'development',
    PORT: 3000,
    HOST: '127.0.0.1',
    DATA_DIR: './data',
    ACCESS_TOKEN_TTL: 900_000,
    REFRESH_TOKEN_TTL: 30 * 86_400_000,
    RATE_LIMIT_PER_MINUTE: 100,
    RATE_LIMIT_PER_HOUR: 1000,
    AUTH_RATE_LIMIT_PER_MINUTE: 10,
    CORS_ORIGINS: [],
    UPLOAD_MAX_BYTES: 5_242_880,
    IMPORT_MAX_ACTIVE_PER_USER: 3,
    TRUST_PROXY: [],
    DB_POOL_MAX: 10,
    DB_STATEMENT_TIMEOUT: 5000,
    JWT_ISSUER: 'catalog-api',
    JWT_AUDIENCE: 'catalog-api',
    ALLOW_SIGNUP: true,
    LOG_LEVEL: 'info'
  })
  t.equal(config.DATABASE_URL, undefined)
  t.equal(config.REDIS_URL, undefined)
  t.equal(config.JWT_SECRET, undefined)
})

t.test('config: IMPORT_MAX_ACTIVE_PER_USER is a whole number from 1', async (t) => {
  t.equal(loadConfig({ IMPORT_MAX_ACTIVE_PER_USER: '5' }).IMPORT_MAX_ACTIVE_PER_USER, 5)
  t.throws(() => loadConfig({ IMPORT_MAX_ACTIVE_PER_USER: '0' }), { name: 'ConfigError', message: /IMPORT_MAX_ACTIVE_PER_USER: must be a whole number from 1 to 1000 \(got "0"\)/ })
})

t.test('config: empty strings count as unset', async (t) => {
  t.equal(loadConfig({ PORT: '', DATABASE_URL: '' }).PORT, 3000)
  t.equal(loadConfig({ DATABASE_URL: '' }).DATABASE_URL, undefined)
})

t.test('config: durations need a unit and decode to milliseconds', async (t) => {
  t.equal(loadConfig({ ACCESS_TOKEN_TTL: '900s' }).ACCESS_TOKEN_TTL, 900_000)
  t.equal(loadConfig({ ACCESS_TOKEN_TTL: '15m' }).ACCESS_TOKEN_TTL, 900_000)
  t.equal(loadConfig({ ACCESS_TOKEN_TTL: '250ms' }).ACCESS_TOKEN_TTL, 250)
  t.equal(loadConfig({ REFRESH_TOKEN_TTL: '2h' }).REFRESH_TOKEN_TTL, 7_200_000)
  t.equal(loadConfig({ REFRESH_TOKEN_TTL: '30d' }).REFRESH_TOKEN_TTL, 2_592_000_000)
  for (const bad of ['15', '0s', '1.5h', '-5m', '15 m', '15M', '5w', 'm']) {
    t.same(problemsOf({ ACCESS_TOKEN_TTL: bad }), [
      `ACCESS_TOKEN_TTL: must be a positive whole number with a unit: ms, s, m, h or d (e.g. 900s, 15m, 30d) (got "${bad}")`
    ], bad)
  }
})

t.test('config: durations have an upper bound, so no lifetime overflows a date and no timeout a timer', async (t) => {
  t.equal(loadConfig({ REFRESH_TOKEN_TTL: '365d', ACCESS_TOKEN_TTL: '24h', DB_STATEMENT_TIMEOUT: '1d' }).REFRESH_TOKEN_TTL, 31_536_000_000)
  t.same(problemsOf({ REFRESH_TOKEN_TTL: '999999999d', ACCESS_TOKEN_TTL: '25h', DB_STATEMENT_TIMEOUT: '30d' }), [
    'ACCESS_TOKEN_TTL: must be at most 24h (got "25h")',
    'REFRESH_TOKEN_TTL: must be at most 8760h (got "999999999d")',
    'DB_STATEMENT_TIMEOUT: must be at most 24h (got "30d")'
  ])
})

t.test('config: booleans accept true/false/1/0 only', async (t) => {
  for (const [text, value] of [['true', true], ['false', false], ['1', true], ['0', false], ['FALSE', false]] as const) {
    t.equal(loadConfig({ ALLOW_SIGNUP: text }).ALLOW_SIGNUP, value, text)
  }
  t.same(problemsOf({ ALLOW_SIGNUP: 'yes' }), ['ALLOW_SIGNUP: must be true or false (got "yes")'])
})

t.test('config: integers are whole numbers within their range, read strictly', async (t) => {
  t.equal(loadConfig({ PORT: '8080' }).PORT, 8080)
  t.equal(loadConfig({ PORT: '0' }).PORT, 0)
  for (const bad of ['abc', '3.5', '1e3', '0x10', ' 80', '-1', '65536']) {
    t.same(problemsOf({ PORT: bad }), [`PORT: must be a whole number from 0 to 65535 (got "${bad}")`], bad)
  }
  t.same(problemsOf({ DB_POOL_MAX: '0' }), ['DB_POOL_MAX: must be a whole number from 1 to 1000 (got "0")'])
})

t.test('config: comma lists are trimmed and empty entries dropped', async (t) => {
  const config = loadConfig({ CORS_ORIGINS: ' https://a.example , https://b.example,,', TRUST_PROXY: '10.0.0.0/8,127.0.0.1' })
  t.same(config.CORS_ORIGINS, ['https://a.example', 'https://b.example'])
  t.same(config.TRUST_PROXY, ['10.0.0.0/8', '127.0.0.1'])
})

t.test('config: LOG_LEVEL must be one of the pino levels', async (t) => {
  t.equal(loadConfig({ LOG_LEVEL: 'debug' }).LOG_LEVEL, 'debug')
  t.same(problemsOf({ LOG_LEVEL: 'verbose' }), ['LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "verbose")'])
})

t.test('config: URLs must have their scheme; neither they nor secrets are echoed', async (t) => {
  t.equal(loadConfig({ DATABASE_URL: 'postgresql://u:p@h/d' }).DATABASE_URL, 'postgresql://u:p@h/d')
  t.equal(loadConfig({ REDIS_URL: 'rediss://h:6380' }).REDIS_URL, 'rediss://h:6380')
  t.same(problemsOf({ DATABASE_URL: 'mysql://u:secret@h/d', REDIS_URL: 'http://:secret@h', JWT_SECRET: 'secret', FIRST_SUPERUSER_EMAIL: 'a@b.c', FIRST_SUPERUSER_PASSWORD: 'secret' }), [
    'DATABASE_URL: must be a postgres:// or postgresql:// URL',
    'REDIS_URL: must be a redis:// or rediss:// URL',
    'JWT_SECRET: must be at least 32 characters long',
    'FIRST_SUPERUSER_PASSWORD: must be at least 8 characters long'
  ])
})

t.test('config: every bad variable is reported, one line each, cross-variable rules included', async (t) => {
  const problems = problemsOf({ PORT: 'x', ACCESS_TOKEN_TTL: '15', ALLOW_SIGNUP: 'nope', LOG_LEVEL: 'loud', NODE_ENV: 'production', FIRST_SUPERUSER_EMAIL: 'not-an-email' })
  t.same(problems.map((problem) => problem.split(':')[0]).sort(), [
    'ACCESS_TOKEN_TTL', 'ALLOW_SIGNUP', 'FIRST_SUPERUSER_EMAIL', 'FIRST_SUPERUSER_PASSWORD', 'JWT_SECRET', 'LOG_LEVEL', 'PORT'
  ])
  t.ok(problems.every((problem) => !problem.includes('\n')))
})

t.test('config: NODE_ENV=production requires JWT_SECRET', async (t) => {
  t.same(problemsOf({ NODE_ENV: 'production' }), ['JWT_SECRET: is required when NODE_ENV=production (every instance must share it)'])
  t.equal(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).NODE_ENV, 'production')
})

t.test('config: FIRST_SUPERUSER_PASSWORD is required with FIRST_SUPERUSER_EMAIL, and the other way round', async (t) => {
  t.same(problemsOf({ FIRST_SUPERUSER_EMAIL: 'admin@example.com' }), ['FIRST_SUPERUSER_PASSWORD: is required when FIRST_SUPERUSER_EMAIL is set'])
  t.same(problemsOf({ FIRST_SUPERUSER_PASSWORD: 'long-enough-password' }), ['FIRST_SUPERUSER_EMAIL: is required when FIRST_SUPERUSER_PASSWORD is set'])
  const config = loadConfig({ FIRST_SUPERUSER_EMAIL: 'admin@example.com', FIRST_SUPERUSER_PASSWORD: 'long-enough-password' })
  t.equal(config.FIRST_SUPERUSER_EMAIL, 'admin@example.com')
})

t.test('config: ConfigError lists the problems in its message', async (t) => {
  t.throws(() => loadConfig({ PORT: 'x' }), { name: 'ConfigError', message: /^Invalid configuration:\nPORT: / })
})

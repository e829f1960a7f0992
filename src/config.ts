import { existsSync } from 'node:fs'
import { Value } from '@sinclair/typebox/value'
import { ConfigSchema, type Config } from '../schemas/config.js'

export type { Config }

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.join('\n')}`)
    this.name = 'ConfigError'
  }
}

const names = Object.keys(ConfigSchema.properties) as Array<keyof typeof ConfigSchema.properties>

/**
 * Reads the configuration from an environment: defaults applied, strings converted,
 * every bad variable reported on a line of its own.
 */
export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const raw: Record<string, unknown> = {}
  for (const name of names) {
    const value = env[name]
    if (value !== undefined && value !== '') raw[name] = value
  }
  const value = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, raw))
  const problems = [...Value.Errors(ConfigSchema, value)].map((error) => {
    const name = error.path.slice(1) || '(config)'
    return `${name}: ${error.message}${name in raw ? ` (got "${String(raw[name])}")` : ''}`
  })
  if (problems.length > 0) throw new ConfigError([...new Set(problems)])
  const config = Value.Decode(ConfigSchema, value)
  if (config.NODE_ENV === 'production' && config.JWT_SECRET === undefined) {
    throw new ConfigError(['JWT_SECRET: is required when NODE_ENV=production (every instance must share it)'])
  }
  if (config.FIRST_SUPERUSER_EMAIL !== undefined && config.FIRST_SUPERUSER_PASSWORD === undefined) {
    throw new ConfigError(['FIRST_SUPERUSER_PASSWORD: is required when FIRST_SUPERUSER_EMAIL is set'])
  }
  return config
}

/** Loads `.env` from the working directory, when present, without overriding the real environment. */
export function loadDotEnv (path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path)
}

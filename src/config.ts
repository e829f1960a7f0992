import { existsSync } from 'node:fs'
import type { TSchema } from '@sinclair/typebox'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'
import { Value } from '@sinclair/typebox/value'
import { ConfigSchema, type Config } from '../schemas/config.js'

export type { Config }

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.join('\n')}`)
    this.name = 'ConfigError'
  }
}

type Name = keyof typeof ConfigSchema.properties
const names = Object.keys(ConfigSchema.properties) as Name[]

/** Never echoed back in an error: secrets, and URLs that may embed a password. */
const SECRETS = new Set<Name>(['JWT_SECRET', 'FIRST_SUPERUSER_PASSWORD', 'DATABASE_URL', 'REDIS_URL'])

const BOOLEANS: Record<string, boolean> = { true: true, false: false, 1: true, 0: false }

/**
 * Environment strings to the schema's types, strictly: TypeBox's own conversion would read
 * `PORT=3.5` as 3 and `1e3` as 1. Anything else stays a string and fails validation.
 */
function convert (schema: TSchema, value: string): unknown {
  if (schema.type === 'integer') return /^[0-9]{1,15}$/.test(value) ? Number(value) : value
  if (schema.type === 'boolean') return BOOLEANS[value.toLowerCase()] ?? value
  return value
}

type Described = TSchema & { errorMessage?: string, anyOf?: Array<{ const?: unknown }>, minimum?: number, maximum?: number, minLength?: number, maxLength?: number }

/** What is wrong with a variable, said for someone editing an environment file. */
function describe (error: ValueError): string {
  const schema = error.schema as Described
  if (schema.errorMessage !== undefined) return schema.errorMessage
  switch (error.type) {
    case ValueErrorType.Union:
      return `must be one of ${(schema.anyOf ?? []).map((option) => String(option.const)).join(', ')}`
    case ValueErrorType.Integer:
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.IntegerMaximum:
      return `must be a whole number from ${schema.minimum ?? 0} to ${schema.maximum ?? Number.MAX_SAFE_INTEGER}`
    case ValueErrorType.Boolean:
      return 'must be true or false'
    case ValueErrorType.StringMinLength:
      return `must be at least ${schema.minLength ?? 0} characters long`
    case ValueErrorType.StringMaxLength:
      return `must be at most ${schema.maxLength ?? 0} characters long`
    default:
      return error.message
  }
}

/** Rules across variables, checked on what was given so they are reported with the rest. */
function crossChecks (raw: Partial<Record<Name, unknown>>): Array<[Name, string]> {
  const problems: Array<[Name, string]> = []
  if (raw.NODE_ENV === 'production' && raw.JWT_SECRET === undefined) {
    problems.push(['JWT_SECRET', 'is required when NODE_ENV=production (every instance must share it)'])
  }
  if (raw.FIRST_SUPERUSER_EMAIL !== undefined && raw.FIRST_SUPERUSER_PASSWORD === undefined) {
    problems.push(['FIRST_SUPERUSER_PASSWORD', 'is required when FIRST_SUPERUSER_EMAIL is set'])
  }
  if (raw.FIRST_SUPERUSER_PASSWORD !== undefined && raw.FIRST_SUPERUSER_EMAIL === undefined) {
    problems.push(['FIRST_SUPERUSER_EMAIL', 'is required when FIRST_SUPERUSER_PASSWORD is set'])
  }
  return problems
}

/**
 * Reads the configuration from an environment: defaults applied, strings converted,
 * every bad variable reported on a line of its own (`NAME: what is wrong (got "value")`).
 */
export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const raw: Partial<Record<Name, unknown>> = {}
  for (const name of names) {
    const value = env[name]
    if (value !== undefined && value !== '') raw[name] = convert(ConfigSchema.properties[name], value)
  }
  const value = Value.Default(ConfigSchema, structuredClone(raw))
  const problems = new Map<string, string>()
  for (const error of Value.Errors(ConfigSchema, value)) {
    const name = error.path.slice(1).split('/')[0] ?? ''
    if (problems.has(name)) continue
    const given = env[name]
    const got = given === undefined || SECRETS.has(name as Name) ? '' : ` (got "${given}")`
    problems.set(name, `${name || '(config)'}: ${describe(error)}${got}`)
  }
  for (const [name, problem] of crossChecks(raw)) {
    if (!problems.has(name)) problems.set(name, `${name}: ${problem}`)
  }
  if (problems.size > 0) throw new ConfigError([...problems.values()])
  const config = Value.Decode(ConfigSchema, value)
  for (const name of names) {
    const { maximumMs } = ConfigSchema.properties[name] as { maximumMs?: number }
    const decoded = config[name]
    if (maximumMs !== undefined && typeof decoded === 'number' && decoded > maximumMs) {
      problems.set(name, `${name}: must be at most ${maximumMs / 3_600_000}h (got "${String(env[name])}")`)
    }
  }
  if (problems.size > 0) throw new ConfigError([...problems.values()])
  return config
}

/** Loads `.env` from the working directory, when present, without overriding the real environment. */
function loadDotEnv (path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path)
}

/**
 * The configuration of a process entry point: `.env` then the environment. A bad configuration prints
 * one line per bad variable on stderr (no logger exists yet) and exits with code 1.
 */
export function loadConfigOrExit (): Config {
  try {
    loadDotEnv()
    return loadConfig()
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    for (const problem of error.problems) console.error(`config: ${problem}`)
    process.exit(1)
  }
}

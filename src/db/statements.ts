import { createHash } from 'node:crypto'
import { sql, type Query } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import type { Executor } from './client.js'

/** Postgres keeps the first 63 bytes of a name (NAMEDATALEN): longer statement names are shortened with a hash. */
const MAX_NAME = 63
/** Statements kept per database. Past it (a listing's filters and sorts combine into many shapes) they are built per call. */
const MAX_STATEMENTS = 256

const kept = new WeakMap<object, Map<string, unknown>>()

/** A statement name Postgres keeps whole: `key` itself when short enough, else its start and a hash of it. */
function statementName (key: string): string {
  return key.length <= MAX_NAME ? key : `${key.slice(0, 40)}~${createHash('sha256').update(key).digest('base64url').slice(0, 20)}`
}

/**
 * The statement `build` makes for `key`, built once per database (or transaction) and kept: drizzle writes a query's
 * SQL on every call, which takes longer than Postgres takes to answer a select by id. `build` prepares it under the
 * name it is given (`.prepare(name)`), so Postgres also parses and plans it once per connection; its values are
 * placeholders (`sql.placeholder`) filled by `execute`. Past MAX_STATEMENTS the name is empty: an unnamed statement,
 * built for this call only.
 */
export function prepared<T> (executor: Executor, key: string, build: (executor: Executor, name: string) => T): T {
  let statements = kept.get(executor)
  if (statements === undefined) kept.set(executor, statements = new Map())
  const existing = statements.get(key) as T | undefined
  if (existing !== undefined) return existing
  if (statements.size >= MAX_STATEMENTS) return build(executor, '')
  const statement = build(executor, statementName(key))
  statements.set(key, statement)
  return statement
}

/**
 * Runs SQL written out in full (`text`, with `$1`… for `params`) as the named prepared statement `name`, in the
 * executor's transaction when it is one: for statements drizzle's builders cannot say, parsed once per connection.
 */
export async function runStatement (executor: Executor, name: string, text: string, params: unknown[]): Promise<void> {
  const values: Record<string, unknown> = {}
  for (const [index, value] of params.entries()) values[`p${index}`] = value
  await prepared(executor, name, (on, prepareAs) => on._.session.prepareQuery(
    { sql: text, params: params.map((_, index) => sql.placeholder(`p${index}`)) }, undefined, prepareAs, false
  )).execute(values)
}

/** The row type a selection of columns reads. */
export type RowOf<Columns extends Record<string, PgColumn>> = { [K in keyof Columns]: Columns[K]['_']['notNull'] extends true ? Columns[K]['_']['data'] : Columns[K]['_']['data'] | null }

/** Turns the driver's rows (arrays, in the order of `columns`) into objects, each value decoded by its column. */
function rowMapper<Columns extends Record<string, PgColumn>> (columns: Columns): (rows: unknown[][]) => Array<RowOf<Columns>> {
  const keys = Object.keys(columns)
  const decoders = Object.values(columns)
  return (rows) => rows.map((row) => {
    const mapped: Record<string, unknown> = {}
    for (let index = 0; index < keys.length; index++) {
      const value = row[index]
      mapped[keys[index] as string] = value === null || value === undefined ? null : (decoders[index] as PgColumn).mapFromDriverValue(value)
    }
    return mapped as RowOf<Columns>
  })
}

/** A select of `columns` that `prepared` keeps: run it with the values of its placeholders. */
export interface PreparedSelect<Row> { execute (values: Record<string, unknown>): Promise<Row[]> }

/**
 * A select of `columns` (a flat object of columns) that `build` writes with drizzle, kept like `prepared`, whose rows
 * are mapped by a function made once from the columns: drizzle's own mapping inspects every field of every row again,
 * which takes longer than Postgres takes to return a page of items.
 */
export function preparedSelect<Columns extends Record<string, PgColumn>> (
  executor: Executor,
  key: string,
  columns: Columns,
  build: (executor: Executor) => { toSQL: () => Query }
): PreparedSelect<RowOf<Columns>> {
  return prepared(executor, key, (on, name) =>
    on._.session.prepareQuery<{ execute: Array<RowOf<Columns>>, all: unknown, values: unknown }>(
      build(on).toSQL(), undefined, name, true, rowMapper(columns)))
}

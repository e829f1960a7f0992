import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { and, asc, desc, or, sql, type Placeholder, type SQL } from 'drizzle-orm'
import type { AnyPgColumn } from 'drizzle-orm/pg-core'
import { canonicalJson } from './canonical-json.js'
import { badRequest, invalidRequest } from './problem.js'

/** What a sort key may hold. Sort keys are non-null columns, so a row always has a value for each. */
export type CursorValue = string | number | boolean | Date

/** One key of a keyset: the row field it reads, the column it orders by, and the direction. */
export interface SortKey {
  field: string
  column: AnyPgColumn
  descending: boolean
}

export interface SortableColumn {
  field: string
  column: AnyPgColumn
}

export interface KeysetPage<Row> {
  data: Row[]
  nextCursor: string | null
}

export interface PageRequest {
  limit: number
  cursor?: string | undefined
  /** Everything that selects and orders the rows (resource, filters, sort); a cursor only continues the same listing. */
  binding: unknown
}

/**
 * The pieces of a page's query, the same for every page of a listing shape (its sort, and whether a cursor is given),
 * so the query can be prepared once: the values are the placeholders `limit` and `after0`, `after1`… (see `pageValues`).
 */
export interface PageQuery {
  after: SQL | undefined
  orderBy: SQL[]
  limit: Placeholder<'limit'>
}

const invalidCursor = (detail: string) =>
  badRequest(detail, { code: 'invalid-cursor', errors: [{ in: 'query', path: '/cursor', message: detail }] })

/**
 * Parses a sort list such as `name,-price` into keys, with `tieBreaker` (the id) appended so the order is total.
 * The tie-breaker follows the direction of the last key.
 */
export function parseSort (spec: string, columns: Record<string, AnyPgColumn>, tieBreaker: SortableColumn): SortKey[] {
  const keys: SortKey[] = []
  for (const entry of spec.split(',')) {
    const descending = entry.startsWith('-')
    const field = descending ? entry.slice(1) : entry
    const column = Object.hasOwn(columns, field) ? columns[field] : undefined
    const issue = column === undefined
      ? `has an unknown field "${field}"`
      : keys.some((key) => key.field === field) ? `names "${field}" twice` : undefined
    if (column === undefined || issue !== undefined) {
      throw invalidRequest([{ in: 'query', path: '/sort', message: issue ?? 'is invalid' }])
    }
    keys.push({ field, column, descending })
  }
  return [...keys, { ...tieBreaker, descending: keys.at(-1)?.descending ?? false }]
}

/** The keys of a listing newest first: `createdAt`, then the id. */
export const newestFirst = (createdAt: AnyPgColumn, id: AnyPgColumn): SortKey[] =>
  [{ field: 'createdAt', column: createdAt, descending: true }, { field: 'id', column: id, descending: true }]

/** `parseSort` for one listing, remembering the sorts it has read: valid ones are few (invalid ones throw, and are not kept). */
export function sortParser (columns: Record<string, AnyPgColumn>, tieBreaker: SortableColumn): (spec: string) => SortKey[] {
  const known = new Map<string, SortKey[]>()
  return (spec) => {
    let keys = known.get(spec)
    if (keys === undefined) {
      keys = parseSort(spec, columns, tieBreaker)
      known.set(spec, keys)
    }
    return keys
  }
}

/** Listings seen recently: most pages are of a few listings, each hashed once. */
const bindingHashes = new LRUCache<string, string>({ max: 1_000 })

function bindingHash (binding: unknown): string {
  const canonical = canonicalJson(binding)
  let hash = bindingHashes.get(canonical)
  if (hash === undefined) {
    hash = createHash('sha256').update(canonical).digest('base64url').slice(0, 22)
    bindingHashes.set(canonical, hash)
  }
  return hash
}

type EncodedValue = string | number | boolean | { d: string }

const encodeValue = (value: CursorValue): EncodedValue => value instanceof Date ? { d: value.toISOString() } : value

function decodeValue (value: unknown): CursorValue | undefined {
  if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) return value
  if (value !== null && typeof value === 'object' && typeof (value as { d?: unknown }).d === 'string') {
    const date = new Date((value as { d: string }).d)
    return Number.isNaN(date.getTime()) ? undefined : date
  }
  return undefined
}

/**
 * Opaque, signed keyset cursors: base64url JSON of the last row's sort key values and a hash of the
 * listing they belong to, followed by an HMAC of it. A modified, foreign or mismatched cursor is a 400.
 */
export class CursorCodec {
  readonly #key: Buffer

  constructor (key: Buffer) {
    this.#key = key
  }

  #sign (payload: string): Buffer {
    return createHmac('sha256', this.#key).update(payload).digest()
  }

  encode (values: CursorValue[], binding: unknown): string {
    const payload = Buffer.from(JSON.stringify({ b: bindingHash(binding), k: values.map(encodeValue) })).toString('base64url')
    return `${payload}.${this.#sign(payload).toString('base64url')}`
  }

  decode (cursor: string, binding: unknown, length: number): CursorValue[] {
    const [payload = '', signature = '', ...rest] = cursor.split('.')
    const given = Buffer.from(signature, 'base64url')
    const expected = this.#sign(payload)
    if (rest.length > 0 || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw invalidCursor('is not a cursor this server issued')
    }
    // Signed by us, so well-formed; checked anyway so that a change of format can never become a 500.
    let parsed: { b?: unknown, k?: unknown }
    try {
      parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { b?: unknown, k?: unknown }
    } catch {
      throw invalidCursor('is not a cursor this server issued')
    }
    if (parsed.b !== bindingHash(binding)) throw invalidCursor('belongs to other filters or another sort order: send the same ones as for the previous page')
    const values = Array.isArray(parsed.k) ? parsed.k.map(decodeValue) : []
    if (values.length !== length || values.some((value) => value === undefined)) throw invalidCursor('does not fit this listing')
    return values as CursorValue[]
  }
}

/** The placeholder of the cursor's value for the key at `index`. */
const afterValue = (index: number) => `after${index}`

/**
 * A cursor value as a parameter of its column's exact type. Both drivers then compare it as that type,
 * whatever JavaScript type it arrived as (`pg` gives numeric as a string, which must not compare as text).
 */
const bound = (key: SortKey, index: number): SQL =>
  sql`cast(${sql.param(sql.placeholder(afterValue(index)), key.column)} as ${sql.raw(key.column.getSQLType())})`

/**
 * Rows strictly after the cursor in the order of `keys`, written so that Postgres can start an index range
 * scan at the cursor: one row comparison `(k1, k2, id) > (v1, v2, vid)` when every key runs the same way;
 * with mixed directions, `(k1 > v1) or (k1 = v1 and k2 < v2) or …` behind the redundant bound `k1 >= v1`.
 */
function after (keys: SortKey[]): SQL | undefined {
  const [first] = keys
  if (first === undefined) return undefined
  const bounds = keys.map(bound)
  if (keys.every((key) => key.descending === first.descending)) {
    return sql`(${sql.join(keys.map((key) => key.column), sql`, `)}) ${sql.raw(first.descending ? '<' : '>')} (${sql.join(bounds, sql`, `)})`
  }
  const strictlyAfter = or(...keys.map((key, index) => and(
    ...keys.slice(0, index).map((previous, j) => sql`${previous.column} = ${bounds[j]}`),
    sql`${key.column} ${sql.raw(key.descending ? '<' : '>')} ${bounds[index]}`
  )))
  return and(sql`${first.column} ${sql.raw(first.descending ? '<=' : '>=')} ${bounds[0]}`, strictlyAfter)
}

/** The condition (when a cursor is given), order and limit of a page's query. */
export function pageQuery (keys: SortKey[], fromCursor: boolean): PageQuery {
  return {
    after: fromCursor ? after(keys) : undefined,
    orderBy: keys.map((key) => key.descending ? desc(key.column) : asc(key.column)),
    limit: sql.placeholder('limit')
  }
}

/** The values of a page's placeholders: one more row than the page size (to know whether there is a next page), and the decoded cursor. */
export function pageValues (codec: CursorCodec, keys: SortKey[], request: PageRequest): Record<string, unknown> {
  const values: Record<string, unknown> = { limit: request.limit + 1 }
  if (request.cursor !== undefined) {
    for (const [index, value] of codec.decode(request.cursor, request.binding, keys.length).entries()) values[afterValue(index)] = value
  }
  return values
}

/**
 * One page of a keyset-paginated listing. `fetch` runs the page's query (`pageQuery`, from a cursor when the request
 * has one) with the values of its placeholders (`pageValues`).
 */
export async function paginate<Row extends Record<string, unknown>> (
  codec: CursorCodec,
  keys: SortKey[],
  request: PageRequest,
  fetch: (fromCursor: boolean, values: Record<string, unknown>) => Promise<Row[]>
): Promise<KeysetPage<Row>> {
  const rows = await fetch(request.cursor !== undefined, pageValues(codec, keys, request))
  if (rows.length <= request.limit) return { data: rows, nextCursor: null }
  const data = rows.slice(0, request.limit)
  const last: Record<string, unknown> = data[data.length - 1] ?? {}
  const lastValues = keys.map((key) => {
    const value = last[key.field]
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean' && !(value instanceof Date)) {
      throw new Error(`sort key ${key.field} is missing from the rows or not a sortable value`)
    }
    return value
  })
  return { data, nextCursor: codec.encode(lastValues, request.binding) }
}

/** A query that runs once its placeholders are given, as drizzle's `prepare` makes one. */
interface Preparable<Row> { prepare (name: string): { execute (values: Record<string, unknown>): Promise<Row[]> } }

/** `paginate` over a query built from the page's pieces (`pageQuery`): the common case of a listing without a prepared shape of its own. */
export async function paginateQuery<Row extends Record<string, unknown>> (
  codec: CursorCodec,
  keys: SortKey[],
  request: PageRequest,
  query: (page: PageQuery) => Preparable<Row>
): Promise<KeysetPage<Row>> {
  return await paginate(codec, keys, request, async (fromCursor, values) => await query(pageQuery(keys, fromCursor)).prepare('').execute(values))
}

/** An RFC 8288 `Link` header value pointing at the next page: the same request (a path and query) with `cursor` replaced. */
export function nextLink (url: string, cursor: string): string {
  const query = url.indexOf('?')
  const params = new URLSearchParams(query === -1 ? '' : url.slice(query + 1))
  params.set('cursor', cursor)
  return `<${query === -1 ? url : url.slice(0, query)}?${params.toString()}>; rel="next"`
}

import type { FastifyReply, FastifyRequest } from 'fastify'
import { ifNoneMatchFails } from '../lib/conditional.js'
import { nextLink, type KeysetPage } from '../lib/pagination.js'
import { notFound } from '../lib/problem.js'

/** What was looked up, or a 404 saying `detail` when there is none. */
export function found<T> (value: T | undefined, detail: string): T {
  if (value === undefined) throw notFound(detail)
  return value
}

/** The strong entity tag of one version of an entity: it changes with every write. */
export const entityTag = (id: string, version: number | string) => `"${id}.${version}"`

/**
 * A conditional read: the entity with its `ETag`, or 304 without a body when `If-None-Match` holds that tag.
 * Headers set before (`Cache-Control`) go out on both.
 */
export function sendEntity<T> (request: FastifyRequest, reply: FastifyReply, etag: string, body: T): T | FastifyReply {
  reply.header('etag', etag)
  if (request.method === 'GET' && ifNoneMatchFails(request.headers['if-none-match'], etag)) return reply.code(304).send()
  return body
}

/** The answer to a new entity: 201 (or 202, for work that goes on), where it is, and its `ETag`. */
export function sendCreated<T> (reply: FastifyReply, location: string, etag: string, body: T, status: 201 | 202 = 201): FastifyReply {
  return reply.code(status).header('location', location).header('etag', etag).send(body)
}

/** A page of a collection, `{ data, nextCursor }`, with the `Link` to the next page when there is one. */
export function sendPage<Row, T> (request: FastifyRequest, reply: FastifyReply, page: KeysetPage<Row>, view: (row: Row) => T): { data: T[], nextCursor: string | null } {
  if (page.nextCursor !== null) reply.header('link', nextLink(request.url, page.nextCursor))
  return { data: page.data.map(view), nextCursor: page.nextCursor }
}

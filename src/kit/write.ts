import type { FastifyRequest } from 'fastify'
import { currentPrincipal } from '../auth/plugin.js'
import { ifMatchHolds } from '../lib/conditional.js'
import { conflict, HttpProblem } from '../lib/problem.js'
import { assertOwnerOrAdmin } from './ownership.js'
import { found } from './responses.js'

/** A write racing this many others in a row gives up with a 409 rather than retrying forever. */
const WRITE_ATTEMPTS = 5

interface VersionedEntity {
  /** The current version: a write states it, and fails when another landed first. */
  etag: string
  /** Who may write it, holding `scope` (admins may write anything). */
  ownerId: string
}

interface ConditionalWrite<Row, T> {
  /** What the entity is called in messages ("item"). */
  entity: string
  /** The scope its owner needs to write it. */
  scope: string
  /** Reads the entity as it is now; undefined when there is none. */
  load: () => Promise<Row | undefined>
  /** Its `ETag` and owner. */
  describe: (row: Row) => VersionedEntity
  /**
   * The write, guarded by the version of `row` (a compare-and-swap in the database): undefined when another write
   * landed first, and the entity is then read and checked again.
   */
  write: (row: Row) => Promise<T | undefined>
}

/**
 * Writes an entity the caller may write, at the version `If-Match` names if any: 404 when there is none, 403 when the
 * caller is neither its owner with the scope nor an admin, 412 when `If-Match` does not hold the current `ETag`, and
 * 409 when other writes keep landing first.
 */
async function writeAtVersion<Row, T> (request: FastifyRequest, options: ConditionalWrite<Row, T>): Promise<T> {
  const ifMatch = request.headers['if-match']
  for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
    const row = found(await options.load(), `No ${options.entity} has this id`)
    const { etag, ownerId } = options.describe(row)
    assertOwnerOrAdmin(currentPrincipal(request), ownerId, options.scope)
    if (!ifMatchHolds(ifMatch, etag)) {
      throw new HttpProblem(412, `The ${options.entity} has changed since the version named in If-Match: fetch it again`, { code: 'precondition-failed' })
    }
    const result = await options.write(row)
    if (result !== undefined) return result
  }
  throw conflict(`The ${options.entity} is changing too often to apply this change: retry`, { code: 'edit-conflict' })
}

/**
 * The conditional writes of one kind of entity, owned by `ownerId` and written with `scope`: each call writes the
 * entity `id` as `writeAtVersion` says.
 */
export function conditionalWrites<Row extends { ownerId: string }> (
  entity: string,
  scope: string,
  load: (id: string) => Promise<Row | undefined>,
  etag: (row: NoInfer<Row>) => string
) {
  return async <T>(request: FastifyRequest, id: string, write: (row: Row) => Promise<T | undefined>): Promise<T> =>
    await writeAtVersion(request, { entity, scope, load: () => load(id), describe: (row) => ({ etag: etag(row), ownerId: row.ownerId }), write })
}

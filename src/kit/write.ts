import type { FastifyRequest } from 'fastify'
import { currentPrincipal } from '../auth/plugin.js'
import { ifMatchHolds } from '../lib/conditional.js'
import { conflict, HttpProblem } from '../lib/problem.js'
import { assertOwnerOrAdmin } from './ownership.js'
import { found } from './responses.js'

/** A write racing this many others in a row gives up with a 409 rather than retrying forever. */
const WRITE_ATTEMPTS = 5

/**
 * The conditional writes of one kind of entity (`entity` in messages), owned by `ownerId` and written with `scope`.
 * Each call writes the entity `id` at the version `If-Match` names if any: 404 when there is none, 403 when the caller
 * is neither its owner with the scope nor an admin, 412 when `If-Match` does not hold the current `ETag`. `write` is
 * guarded by the version of the row it is given (a compare-and-swap in the database) and returns undefined when
 * another write landed first: the entity is then read and checked again, and 409 when other writes keep landing first.
 */
export function conditionalWrites<Row extends { ownerId: string }> (
  entity: string,
  scope: string,
  load: (id: string) => Promise<Row | undefined>,
  etag: (row: NoInfer<Row>) => string
) {
  return async <T>(request: FastifyRequest, id: string, write: (row: Row) => Promise<T | undefined>): Promise<T> => {
    const ifMatch = request.headers['if-match']
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const row = found(await load(id), `No ${entity} has this id`)
      assertOwnerOrAdmin(currentPrincipal(request), row.ownerId, scope)
      if (!ifMatchHolds(ifMatch, etag(row))) {
        throw new HttpProblem(412, `The ${entity} has changed since the version named in If-Match: fetch it again`, { code: 'precondition-failed' })
      }
      const result = await write(row)
      if (result !== undefined) return result
    }
    throw conflict(`The ${entity} is changing too often to apply this change: retry`, { code: 'edit-conflict' })
  }
}

import type { FastifyRequest } from 'fastify'
import { currentPrincipal, type Principal } from '../auth/plugin.js'
import { forbidden } from '../lib/problem.js'
import { found } from './responses.js'

/**
 * The one rule for writing someone's resource: its owner holding `scope`, or an admin.
 * Routes state `requires([scope], ['admin'])`, so the caller holds one of the two already.
 */
export function assertOwnerOrAdmin (principal: Principal, ownerId: string, scope: string): void {
  if (principal.scopes.includes('admin')) return
  if (principal.id === ownerId && principal.scopes.includes(scope)) return
  throw forbidden(principal.id === ownerId
    ? `This needs the ${scope} scope`
    : 'This belongs to another user: only its owner or an admin may do this')
}

/** An entity only its owner (holding `scope`) or an admin may see: 404 when there is none, 403 when it is someone else's. */
export function ownEntity<Row extends { ownerId: string }> (request: FastifyRequest, row: Row | undefined, entity: string, scope: string): Row {
  const entityRow = found(row, `No ${entity} has this id`)
  assertOwnerOrAdmin(currentPrincipal(request), entityRow.ownerId, scope)
  return entityRow
}

import type { Principal } from '../auth/plugin.js'
import { forbidden } from '../lib/problem.js'

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

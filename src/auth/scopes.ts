import { SCOPES, type Scope } from '../../schemas/common.js'
import { OAuthFailure } from './oauth-failure.js'

const KNOWN = Object.keys(SCOPES) as Scope[]

/** Every scope there is, in canonical order. */
export const ALL_SCOPES: Scope[] = [...KNOWN]

/** What a password grant gets when it asks for nothing: `admin` must always be asked for. */
export const DEFAULT_SCOPES: Scope[] = ['profile', 'items:write']

const isScope = (value: string): value is Scope => (KNOWN as string[]).includes(value)

/** Scopes in their canonical order, space separated, as in the token response and the `scope` claim. */
export const formatScopes = (scopes: Iterable<Scope>): string => {
  const set = new Set(scopes)
  return KNOWN.filter((scope) => set.has(scope)).join(' ')
}

/** The known scopes in a space-separated list, ignoring anything else (for stored and signed values). */
export const readScopes = (text: string): Scope[] => text.split(' ').filter(isScope)

/** The scopes a token request asks for, or undefined when it asks for none. Unknown ones are `invalid_scope`. */
export function requestedScopes (text: string | undefined): Scope[] | undefined {
  const names = (text ?? '').split(/[ \t]+/).filter(Boolean)
  if (names.length === 0) return undefined
  const unknown = names.filter((name) => !isScope(name))
  if (unknown.length > 0) throw new OAuthFailure('invalid_scope', `Unknown scope: ${unknown.join(' ')}`)
  return names.filter(isScope)
}

/**
 * The scopes to grant: what was asked for (or `fallback`), each within `allowed`.
 * `admin` is only ever allowed to superusers.
 */
export function grantScopes (requested: Scope[] | undefined, fallback: Scope[], allowed: Scope[], isSuperuser: boolean): Scope[] {
  const permitted = allowed.filter((scope) => scope !== 'admin' || isSuperuser)
  if (requested === undefined) return fallback.filter((scope) => permitted.includes(scope))
  const refused = requested.filter((scope) => !permitted.includes(scope))
  if (refused.length > 0) throw new OAuthFailure('invalid_scope', `Scope not allowed: ${[...new Set(refused)].join(' ')}`)
  return requested
}

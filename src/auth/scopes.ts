import type { ResourceContract, ScopeDeclaration } from '../../schemas/common.js'
import { OAuthFailure } from './oauth-failure.js'

/**
 * The scopes the registered resources declare. Their canonical order (in token responses and the `scope` claim) is
 * the order of declaration, the superuser-only ones last.
 */
export class Scopes {
  /** Every scope there is, in canonical order, with its declaration. */
  readonly declared: ReadonlyMap<string, ScopeDeclaration>
  /** What a password grant gets when it asks for nothing. */
  readonly defaults: string[]

  constructor (contracts: ResourceContract[]) {
    const entries = contracts.flatMap((contract) => Object.entries(contract.scopes ?? {}))
    const names = entries.map(([name]) => name)
    const twice = names.find((name, index) => names.indexOf(name) !== index)
    if (twice !== undefined) throw new Error(`The scope ${twice} is declared twice`)
    this.declared = new Map([
      ...entries.filter(([, scope]) => scope.superuserOnly !== true),
      ...entries.filter(([, scope]) => scope.superuserOnly === true)
    ])
    this.defaults = [...this.declared].filter(([, scope]) => scope.byDefault === true).map(([name]) => name)
  }

  /** The scopes and their descriptions, as the OAuth2 security scheme lists them. */
  descriptions (): Record<string, string> {
    return Object.fromEntries([...this.declared].map(([name, scope]) => [name, scope.description]))
  }

  has (name: string): boolean {
    return this.declared.has(name)
  }

  /** Scopes in their canonical order, space separated, as in the token response and the `scope` claim. */
  format (scopes: Iterable<string>): string {
    const set = new Set(scopes)
    return [...this.declared.keys()].filter((scope) => set.has(scope)).join(' ')
  }

  /** The known scopes in a space-separated list, ignoring anything else (for stored and signed values). */
  read (text: string): string[] {
    return text.split(' ').filter((name) => this.has(name))
  }

  /** The scopes a token request asks for, or undefined when it asks for none. Unknown ones are `invalid_scope`. */
  requested (text: string | undefined): string[] | undefined {
    const names = (text ?? '').split(/[ \t]+/).filter(Boolean)
    if (names.length === 0) return undefined
    const unknown = names.filter((name) => !this.has(name))
    if (unknown.length > 0) throw new OAuthFailure('invalid_scope', `Unknown scope: ${unknown.join(' ')}`)
    return names
  }

  /**
   * The scopes to grant: what was asked for, else the defaults, or when renewing a login, what it holds (`within`).
   * Asking for more than `within`, or for a superuser-only scope without being a superuser, is `invalid_scope`.
   */
  grant (requested: string[] | undefined, isSuperuser: boolean, within?: string[]): string[] {
    const permitted = (scope: string) => this.holds(scope, isSuperuser) && (within === undefined || within.includes(scope))
    if (requested === undefined) return (within ?? this.defaults).filter(permitted)
    const refused = requested.filter((scope) => !permitted(scope))
    if (refused.length > 0) throw new OAuthFailure('invalid_scope', `Scope not allowed: ${[...new Set(refused)].join(' ')}`)
    return requested
  }

  /** Whether a scope of a principal still holds: superuser-only ones end when the user is no longer a superuser. */
  holds (scope: string, isSuperuser: boolean): boolean {
    return isSuperuser || this.declared.get(scope)?.superuserOnly !== true
  }
}

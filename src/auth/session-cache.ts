import { LRUCache } from 'lru-cache'
import type { LiveSession, LoginChange } from './repository.js'

export interface SessionCacheOptions {
  /** How long a login found live is believed without asking the database again. */
  ttlMs: number
  /** Logins remembered at most (the least recently used go first). */
  max: number
}

/**
 * Live logins, remembered between requests so that most authenticated requests cost no database round trip. What
 * this instance changes (a revocation, a password change, a user deactivated, demoted or deleted) is forgotten as its
 * transaction commits; what another instance changes is seen within `ttlMs`, the longest an entry is believed.
 */
export class SessionCache {
  private readonly sessions: LRUCache<string, LiveSession>
  /** Counts what was forgotten: a lookup that ran while something was forgotten may have read it before, and is not kept. */
  private forgotten = 0

  constructor (options: SessionCacheOptions) {
    this.sessions = new LRUCache({ max: options.max, ttl: options.ttlMs })
  }

  /** The login `sessionId` of `userId` if it is live now, from memory or else from `load`. */
  async find (sessionId: string, userId: string, now: number, load: () => Promise<LiveSession | undefined>): Promise<LiveSession | undefined> {
    const known = this.sessions.get(sessionId)
    if (known !== undefined && known.userId === userId && known.expiresAt.getTime() > now) return known
    const before = this.forgotten
    const session = await load()
    if (session !== undefined && this.forgotten === before) this.sessions.set(sessionId, session)
    return session
  }

  /** Forgets a login, or every login of a user. */
  forget (change: LoginChange): void {
    this.forgotten++
    if ('sessionId' in change) {
      this.sessions.delete(change.sessionId)
      return
    }
    for (const [id, session] of this.sessions.entries()) {
      if (session.userId === change.userId) this.sessions.delete(id)
    }
  }
}

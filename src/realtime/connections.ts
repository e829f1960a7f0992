import { setTimeout as sleep } from 'node:timers/promises'
import type { Executor } from '../db/client.js'

export type Transport = 'websocket' | 'sse'

/** Who a connection acts for: what the live channel reads of the principal that opened it. */
export interface Identity {
  /** The user, the only one who may follow its own `user:<id>` topic. */
  readonly id: string
  /** The login: the connection ends with it. */
  readonly sessionId: string
  /** When the access token expires (ms since the epoch): the connection ends then. */
  readonly expiresAt: number
}

/** Which of these logins have not ended at `now`. */
export type LiveSessions = (db: Executor, sessionIds: string[], now: Date) => Promise<Set<string>>

/** Why a connection's identity ended: sent to the client as an error code before it is closed. */
export type IdentityEnd = 'token_expired' | 'login_ended'

/** A long-lived client connection, whatever its transport. */
export interface Connection {
  readonly transport: Transport
  /** Who it acts for; null for an anonymous client. */
  readonly principal: Identity | null
  /** Its token expired or its login ended: tells the client why, then closes (WebSocket code 1008). */
  end (code: IdentityEnd, reason: string): void
  /** Keeps the connection alive and drops it when the peer is gone (WebSocket ping, SSE comment). */
  heartbeat (): void
  /** The server is stopping: closes politely (WebSocket code 1001). */
  shutdown (): void
  /** Closes at once, without waiting for the peer. */
  destroy (): void
}

/** How many sessions one query checks. */
const SESSION_CHECK_BATCH = 1000

/**
 * Every open WebSocket and SSE connection of this instance: counted for metrics, checked together so a
 * connection's identity never outlives its login, kept alive, and closed on shutdown.
 */
export class Connections {
  private readonly open = new Set<Connection>()

  /** `liveSessions` says which logins have not ended; authentication owns that rule. */
  constructor (private readonly liveSessions: LiveSessions) {}

  add (connection: Connection): void {
    this.open.add(connection)
  }

  delete (connection: Connection): void {
    this.open.delete(connection)
  }

  count (transport: Transport): number {
    let count = 0
    for (const connection of this.open) if (connection.transport === transport) count++
    return count
  }

  heartbeat (transport: Transport): void {
    for (const connection of this.open) if (connection.transport === transport) connection.heartbeat()
  }

  /**
   * Ends the connections whose access token has expired, or whose login has ended (logout, password change,
   * user deactivated or deleted): one query per thousand logins, however many connections share them.
   */
  async checkIdentities (db: Executor, now = new Date()): Promise<void> {
    const bySession = new Map<string, Connection[]>()
    for (const connection of this.open) {
      const principal = connection.principal
      if (principal === null) continue
      if (principal.expiresAt <= now.getTime()) {
        connection.end('token_expired', 'The access token has expired')
        continue
      }
      const list = bySession.get(principal.sessionId)
      if (list === undefined) bySession.set(principal.sessionId, [connection])
      else list.push(connection)
    }
    const sessions = [...bySession.keys()]
    for (let start = 0; start < sessions.length; start += SESSION_CHECK_BATCH) {
      const batch = sessions.slice(start, start + SESSION_CHECK_BATCH)
      const live = await this.liveSessions(db, batch, now)
      for (const session of batch) {
        if (live.has(session)) continue
        for (const connection of bySession.get(session) ?? []) connection.end('login_ended', 'The login of this access token has ended')
      }
    }
  }

  /** Closes every connection politely, then, after `graceMs`, destroys those whose peer has not closed its side. */
  async shutdown (graceMs: number): Promise<void> {
    for (const connection of this.open) connection.shutdown()
    const deadline = Date.now() + graceMs
    while (this.open.size > 0 && Date.now() < deadline) await sleep(20)
    for (const connection of this.open) connection.destroy()
  }
}

import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import WebSocket from 'ws'
import type { ServerMessage } from '../../schemas/ws.js'
import type { Item } from '../../schemas/items.js'
import { newestEventId } from '../../src/realtime/outbox.js'
import { authHeader, login, signUp, type TokenPair } from '../helper.js'

type Message = ServerMessage & { [key: string]: unknown }

/** A WebSocket client for tests: every message it receives, in order, and how it closed. */
export class TestSocket {
  readonly messages: Message[] = []
  readonly closed: Promise<{ code: number, reason: string }>
  private read = 0
  private readonly waiters = new Set<() => void>()

  constructor (readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => {
      this.messages.push(JSON.parse(data.toString('utf8')) as Message)
      for (const wake of this.waiters) wake()
    })
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => {
      for (const wake of this.waiters) wake()
      resolve({ code, reason: reason.toString('utf8') })
    }))
  }

  send (message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  /** The next message not yet taken, waiting up to `timeoutMs` for it. */
  async next (timeoutMs = 5_000): Promise<Message> {
    const deadline = Date.now() + timeoutMs
    while (this.read >= this.messages.length) {
      if (this.socket.readyState === WebSocket.CLOSED) throw new Error(`closed while waiting for a message; got ${JSON.stringify(this.messages)}`)
      if (Date.now() > deadline) throw new Error(`no message within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`)
      await this.wait(deadline - Date.now())
    }
    const message = this.messages[this.read++]
    if (message === undefined) throw new Error('no message')
    return message
  }

  /** Takes messages until one of `type` comes (the skipped ones stay in `messages`). */
  async nextOf (type: ServerMessage['type'], timeoutMs = 5_000): Promise<Message> {
    for (;;) {
      const message = await this.next(timeoutMs)
      if (message.type === type) return message
    }
  }

  /** Sends a message and returns the answer. */
  async ask (message: unknown): Promise<Message> {
    this.send(message)
    return await this.next()
  }

  /** Waits until no message has come for `quietMs`, and returns those not yet taken. */
  async rest (quietMs = 300): Promise<Message[]> {
    for (let count = -1; count !== this.messages.length;) {
      count = this.messages.length
      await sleep(quietMs)
    }
    const rest = this.messages.slice(this.read)
    this.read = this.messages.length
    return rest
  }

  close (): void {
    this.socket.close()
  }

  private async wait (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, Math.max(1, ms))
      this.waiters.add(done)
    })
  }
}

export interface ConnectOptions {
  token?: string | TokenPair
  /** How to pass the token: the query parameter (default), the subprotocol pair, or an Authorization header. */
  via?: 'query' | 'protocol' | 'header'
  headers?: Record<string, string>
}

const tokenOf = (token: string | TokenPair) => typeof token === 'string' ? token : token.access_token

/**
 * Waits until the hub has delivered every stored event. A subscription without `since` starts where the hub is, and
 * the hub may trail the commits by a moment (while other transactions run), so events committed just before would
 * still arrive: tests that expect none wait for this first.
 */
export async function hubCaughtUp (app: FastifyInstance): Promise<void> {
  for (const deadline = Date.now() + 5_000; Date.now() < deadline; await sleep(10)) {
    if (app.realtime.hub.position >= await newestEventId(app.db)) return
  }
  throw new Error('the hub did not catch up within 5 s')
}

/** Opens a socket with `injectWS` (no network), its listeners attached before the first message can arrive, once the hub has caught up. */
export async function connect (t: Test, app: FastifyInstance, options: ConnectOptions = {}): Promise<TestSocket> {
  await hubCaughtUp(app)
  const { token, via = 'query' } = options
  const headers: Record<string, string> = { ...options.headers }
  let path = '/api/v1/ws'
  if (token !== undefined) {
    if (via === 'query') path += `?access_token=${encodeURIComponent(tokenOf(token))}`
    if (via === 'protocol') headers['sec-websocket-protocol'] = `bearer, ${tokenOf(token)}`
    if (via === 'header') Object.assign(headers, authHeader(tokenOf(token)))
  }
  let client: TestSocket | undefined
  await app.injectWS(path, { headers }, { onInit: (ws) => { client = new TestSocket(ws) } })
  if (client === undefined) throw new Error('the socket was not created')
  const opened = client
  t.teardown(() => opened.socket.terminate())
  return opened
}

/** Opens a socket to a listening server over the network. */
export async function connectTo (t: Test, origin: string, options: ConnectOptions & { protocols?: string[] } = {}): Promise<TestSocket> {
  const { token, via = 'query' } = options
  const url = new URL('/api/v1/ws', origin.replace(/^http/, 'ws'))
  const protocols = [...(options.protocols ?? [])]
  const headers: Record<string, string> = { ...options.headers }
  if (token !== undefined) {
    if (via === 'query') url.searchParams.set('access_token', tokenOf(token))
    if (via === 'protocol') protocols.push('bearer', tokenOf(token))
    if (via === 'header') Object.assign(headers, authHeader(tokenOf(token)))
  }
  const socket = new WebSocket(url, protocols, { headers })
  const client = new TestSocket(socket)
  t.teardown(() => socket.terminate())
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })
  return client
}

/** Subscribes and waits for the confirmation. */
export async function subscribe (client: TestSocket, topics: string[], since?: string): Promise<void> {
  const answer = await client.ask({ type: 'subscribe', topics, ...(since === undefined ? {} : { since }) })
  if (answer.type !== 'subscribed') throw new Error(`subscribe answered ${JSON.stringify(answer)}`)
}

/** A signed-up user and their token. */
export async function user (app: FastifyInstance, scope?: string): Promise<{ id: string, email: string, token: TokenPair }> {
  const created = await signUp(app)
  return { id: created.id, email: created.email, token: await login(app, created.email, undefined, scope) }
}

/** Creates an item through the API. */
export async function createItem (app: FastifyInstance, token: TokenPair, body: Record<string, unknown> = {}): Promise<Item> {
  const res = await app.inject({ method: 'POST', url: '/api/v1/items', headers: authHeader(token), payload: { name: 'Walnut desk', price: 24.99, ...body } })
  if (res.statusCode !== 201) throw new Error(`create item: ${res.statusCode} ${res.body}`)
  return res.json<Item>()
}

/** Real-time options that make tests fast: frequent identity checks and polls. */
export const FAST_REALTIME = { identityCheckMs: 100, pollIntervalMs: 200, shutdownGraceMs: 200 }

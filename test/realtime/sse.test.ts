import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { EventSource } from 'eventsource'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { authHeader, build } from '../helper.js'
import { finished, ndjson, startImport } from '../jobs/helpers.js'
import { connect, createItem, FAST_REALTIME, subscribe, user } from './helpers.js'

/** One Server-Sent Event block: its fields, or a comment. */
interface Block { id?: string, data?: string, retry?: string, comment?: string }

/** A streamed `GET /api/v1/events`, read block by block. */
class Stream {
  readonly blocks: Block[] = []
  ended = false
  private read = 0

  constructor (readonly response: Response, private readonly abort: AbortController) {
    this.pump().catch(() => undefined)
  }

  private async pump (): Promise<void> {
    const decoder = new TextDecoder()
    let buffered = ''
    try {
      for await (const chunk of this.response.body ?? []) {
        buffered += decoder.decode(chunk as Uint8Array, { stream: true })
        for (let end = buffered.indexOf('\n\n'); end !== -1; end = buffered.indexOf('\n\n')) {
          const block: Block = {}
          for (const line of buffered.slice(0, end).split('\n')) {
            if (line.startsWith(':')) block.comment = line.slice(1).trim()
            else {
              const [field = '', ...rest] = line.split(': ')
              block[field as 'id' | 'data' | 'retry'] = rest.join(': ')
            }
          }
          this.blocks.push(block)
          buffered = buffered.slice(end + 2)
        }
      }
    } catch {
      // Aborted by the test.
    } finally {
      this.ended = true
    }
  }

  /** The next block that is not a comment (or is, with `comments`), waiting up to 5 s. */
  async next ({ comments = false } = {}): Promise<Block> {
    for (const deadline = Date.now() + 5_000; Date.now() < deadline;) {
      const block = this.blocks[this.read]
      if (block !== undefined) {
        this.read++
        if (comments || block.comment === undefined) return block
        continue
      }
      if (this.ended) throw new Error(`the stream ended; got ${JSON.stringify(this.blocks)}`)
      await sleep(10)
    }
    throw new Error(`no block within 5 s; got ${JSON.stringify(this.blocks)}`)
  }

  /** The next block with data, parsed. */
  async message (): Promise<Record<string, unknown>> {
    for (;;) {
      const block = await this.next()
      if (block.data !== undefined) return JSON.parse(block.data) as Record<string, unknown>
    }
  }

  close (): void {
    this.abort.abort()
  }
}

const app = await build(t, { EVENTS_RETENTION: '1s' }, { realtime: { ...FAST_REALTIME, pruneIntervalMs: 3_600_000 } })
await app.listen({ host: '127.0.0.1', port: 0 })
const origin = (server: FastifyInstance) => `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`
const ada = await user(app)
const bob = await user(app)

async function open (t: Test, query: string, headers: Record<string, string> = {}, server = app): Promise<Stream> {
  const abort = new AbortController()
  const response = await fetch(`${origin(server)}/api/v1/events?${query}`, { headers, signal: abort.signal })
  const stream = new Stream(response, abort)
  t.teardown(() => stream.close())
  return stream
}

/** The id of the newest event on `items`, by creating one and watching for it. */
async function newestItemsEvent (t: Test): Promise<string> {
  const socket = await connect(t, app)
  await subscribe(socket, ['items'])
  await createItem(app, ada.token)
  return String((await socket.next()).id)
}

t.test('GET /api/v1/events → a text/event-stream: retry, a comment, then each event with its id', async (t) => {
  const stream = await open(t, 'topics=items')
  t.equal(stream.response.status, 200)
  t.equal(stream.response.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  t.equal(stream.response.headers.get('cache-control'), 'no-store')
  t.equal(stream.response.headers.get('x-content-type-options'), 'nosniff')
  t.match(stream.response.headers.get('x-request-id'), /^[\w.:-]+$/)
  t.same(await stream.next({ comments: true }), { retry: '2000' })
  t.same(await stream.next({ comments: true }), { comment: 'following items' })

  const socket = await connect(t, app)
  await subscribe(socket, ['items'])
  const item = await createItem(app, ada.token)
  const block = await stream.next()
  const sent = await socket.next()
  t.equal(block.id, sent.id, 'id: is the event id')
  t.same(JSON.parse(block.data ?? ''), sent, 'data: is the same event message as on the WebSocket')
  t.match(sent, { name: 'item.created', data: { id: item.id } })
})

t.test('GET /api/v1/events → 400 for missing or unknown topics, 401 for a bad token, 403 for a private topic not yours', async (t) => {
  const missing = await app.inject({ url: '/api/v1/events' })
  t.equal(missing.statusCode, 400)
  t.match(missing.json(), { errors: [{ in: 'query', path: '/topics', message: 'is required' }] })
  const unknown = await app.inject({ url: '/api/v1/events?topics=items,orders' })
  t.equal(unknown.statusCode, 400)
  t.match(unknown.json(), { errors: [{ in: 'query', path: '/topics' }] })
  const badLastId = await app.inject({ url: '/api/v1/events?topics=items', headers: { 'last-event-id': 'abc' } })
  t.equal(badLastId.statusCode, 400)
  t.match(badLastId.json(), { errors: [{ in: 'header', path: '/last-event-id' }] })
  for (const headers of [{ authorization: 'Bearer nope' }, {}]) {
    const query = 'authorization' in headers ? 'topics=items' : 'topics=items&access_token=nope'
    const res = await app.inject({ url: `/api/v1/events?${query}`, headers })
    t.equal(res.statusCode, 401)
    t.match(res.headers['www-authenticate'], /invalid_token/)
  }
  const anonymous = await app.inject({ url: `/api/v1/events?topics=user:${ada.id}` })
  t.equal(anonymous.statusCode, 403)
  t.match(anonymous.json(), { type: 'urn:catalog-api:problem:forbidden-topic', detail: `Private topics need an access token: user:${ada.id}` })
  const other = await app.inject({ url: `/api/v1/events?topics=items,user:${ada.id}`, headers: authHeader(bob.token) })
  t.equal(other.statusCode, 403)
})

t.test('a private topic over SSE, with Authorization: Bearer or access_token', async (t) => {
  const byHeader = await open(t, `topics=user:${ada.id}`, authHeader(ada.token))
  const byQuery = await open(t, `topics=user:${ada.id}&access_token=${ada.token.access_token}`)
  const job = await startImport(app, ada.token, { filename: 'one.ndjson', content: ndjson([{ name: 'A', price: 1 }]) })
  const done = await finished(app, ada.token, job.id)
  for (const stream of [byHeader, byQuery]) {
    const statuses: string[] = []
    for (let message = await stream.message(); ; message = await stream.message()) {
      t.match(message, { type: 'event', name: 'job.updated', topic: `user:${ada.id}`, data: { id: job.id } })
      statuses.push((message.data as { status: string }).status)
      if (statuses.at(-1) === 'succeeded') {
        t.same(message.data, done)
        break
      }
    }
    t.equal(statuses[0], 'queued')
  }
})

t.test('Last-Event-ID (or lastEventId) replays the stored events after it, then live ones', async (t) => {
  const since = await newestItemsEvent(t)
  const one = await createItem(app, ada.token, { name: 'after one' })
  const two = await createItem(app, ada.token, { name: 'after two' })
  for (const [query, headers] of [['topics=items', { 'last-event-id': since }], [`topics=items&lastEventId=${since}`, {}], ['topics=items&lastEventId=1', { 'last-event-id': since }]] as const) {
    const stream = await open(t, query, headers)
    const replayed = [await stream.message(), await stream.message()]
    t.same(replayed.map((message) => (message.data as { id: string }).id), [one.id, two.id], `${query} ${JSON.stringify(headers)}`)
  }
})

t.test('a Last-Event-ID older than the events kept → a resync_required message, then live events', async (t) => {
  const since = await newestItemsEvent(t)
  await createItem(app, ada.token)
  await sleep(1_100)
  await app.realtime.prune()
  const stream = await open(t, 'topics=items', { 'last-event-id': since })
  t.same(await stream.next(), { retry: '2000' })
  const first = await stream.next()
  t.equal(first.id, undefined, 'no id: the client keeps its last event id')
  t.match(JSON.parse(first.data ?? ''), { type: 'error', code: 'resync_required' })
  const item = await createItem(app, ada.token)
  t.match(await stream.message(), { name: 'item.created', data: { id: item.id } })
})

t.test('a comment keeps the stream alive', async (t) => {
  const chatty = await build(t, {}, { realtime: { sseKeepAliveMs: 100 } })
  await chatty.listen({ host: '127.0.0.1', port: 0 })
  const stream = await open(t, 'topics=items', {}, chatty)
  await stream.next({ comments: true })
  t.same(await stream.next({ comments: true }), { comment: 'following items' })
  t.same(await stream.next({ comments: true }), { comment: 'keep-alive' })
  const text = (await chatty.inject({ url: '/metrics' })).body
  t.match(text, /^realtime_connections\{transport="sse"\} 1$/m)
})

t.test('the stream ends, after a token_expired message, when the token expires; and on shutdown', async (t) => {
  const short = await build(t, { ACCESS_TOKEN_TTL: '2s' }, { realtime: FAST_REALTIME })
  await short.listen({ host: '127.0.0.1', port: 0 })
  const carl = await user(short)
  const stream = await open(t, `topics=user:${carl.id}`, authHeader(carl.token), short)
  t.match(await stream.message(), { type: 'error', code: 'token_expired', message: /reconnect with a fresh token and lastEventId/ })
  for (let waited = 0; !stream.ended && waited < 2_000; waited += 10) await sleep(10)
  t.ok(stream.ended, 'then the stream ends')

  const anonymous = await open(t, 'topics=items', {}, short)
  await anonymous.next({ comments: true })
  await short.close()
  t.ok(anonymous.ended, 'closing the server ends open streams')
})

t.test('EventSource: after the server drops the stream it reconnects with Last-Event-ID and gets what it missed, once', async (t) => {
  const source = new EventSource(`${origin(app)}/api/v1/events?topics=items`)
  t.teardown(() => source.close())
  const received: Array<{ id: string, data: Record<string, unknown> }> = []
  source.onmessage = (event) => { received.push({ id: event.lastEventId, data: JSON.parse(event.data as string) as Record<string, unknown> }) }
  await new Promise((resolve) => { source.onopen = resolve })
  const before = await createItem(app, ada.token, { name: 'before the drop' })
  for (let waited = 0; received.length === 0 && waited < 5_000; waited += 10) await sleep(10)

  let reopened = false
  source.onopen = () => { reopened = true }
  app.server.closeAllConnections()
  const meanwhile = await createItem(app, ada.token, { name: 'while away' })
  for (let waited = 0; received.length < 2 && waited < 10_000; waited += 20) await sleep(20)
  t.ok(reopened, 'it reconnected')
  t.same(received.map((event) => (event.data.data as { id: string }).id), [before.id, meanwhile.id], 'each event once, in order')
  t.same(received.map((event) => event.id), received.map((event) => String(event.data.id)))
})

import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import WebSocket from 'ws'
import { newEvent, emit } from '../../src/realtime/outbox.js'
import { build } from '../helper.js'
import { connectTo, createItem, subscribe, TestSocket, user } from './helpers.js'

// Real sockets over loopback: what injectWS cannot show (the handshake, the HTTP answer to a refused upgrade, backpressure).
const app = await build(t, {}, { realtime: { limits: { maxBufferedBytes: 256 * 1024 } } })
await app.listen({ host: '127.0.0.1', port: 0 })
const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
const ada = await user(app)

/** The HTTP answer to an upgrade the server refused. */
async function refusal (url: string, options: WebSocket.ClientOptions = {}, protocols: string[] = []) {
  const socket = new WebSocket(url, protocols, options)
  return await new Promise<{ status: number, headers: Record<string, unknown>, body: string }>((resolve, reject) => {
    socket.on('unexpected-response', (_request, response) => {
      let body = ''
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
    })
    socket.on('open', () => reject(new Error('the upgrade was accepted')))
    socket.on('error', () => undefined)
  })
}

t.test('the server selects the bearer subprotocol offered with the token', async (t) => {
  const socket = await connectTo(t, origin, { token: ada.token, via: 'protocol' })
  t.equal(socket.socket.protocol, 'bearer')
  await subscribe(socket, [`user:${ada.id}`])
  const anonymous = await connectTo(t, origin)
  t.equal(anonymous.socket.protocol, '', 'no subprotocol unless asked for')
})

t.test('a refused upgrade is an HTTP problem: 401 with WWW-Authenticate for a bad token, 403 for a foreign origin', async (t) => {
  const ws = origin.replace('http', 'ws')
  const unauthorized = await refusal(`${ws}/api/v1/ws?access_token=nope`)
  t.equal(unauthorized.status, 401)
  t.match(unauthorized.headers['content-type'], /^application\/problem\+json/)
  t.match(unauthorized.headers['www-authenticate'], /error="invalid_token"/)
  t.match(JSON.parse(unauthorized.body), { status: 401, detail: 'The access token is invalid', instance: '/api/v1/ws' })
  const viaProtocol = await refusal(`${ws}/api/v1/ws`, {}, ['bearer', 'nope'])
  t.equal(viaProtocol.status, 401)
  const foreign = await refusal(`${ws}/api/v1/ws`, { headers: { origin: 'https://evil.example.net' } })
  t.equal(foreign.status, 403)
  t.match(JSON.parse(foreign.body), { type: 'urn:catalog-api:problem:origin-not-allowed' })
  const sameOrigin = await connectTo(t, origin, { headers: { origin } })
  t.same(await sameOrigin.ask({ type: 'ping' }), { type: 'pong' }, 'a page of this server is let in')
})

t.test('a client that stops reading is closed with 1013 instead of growing the server\'s memory', async (t) => {
  const socket = await connectTo(t, origin)
  await subscribe(socket, ['items'])
  const reader = (socket.socket as unknown as { _socket: import('node:net').Socket })._socket
  reader.pause()
  const item = await createItem(app, ada.token, { description: 'x'.repeat(5000) })
  // Large events, fast, straight into the outbox: more than the socket buffers and the 256 KiB allowed.
  const bulk = Array.from({ length: 2000 }, () => newEvent('item.updated', 'items', item))
  for (let start = 0; start < bulk.length; start += 200) await emit(app.db, bulk.slice(start, start + 200))
  await sleep(500)
  reader.resume()
  const closed = await socket.closed
  t.equal(closed.code, 1013)
  t.equal(closed.reason, 'Too slow: too many unread events')
  t.ok(socket.messages.length < bulk.length, `it got ${socket.messages.length} of ${bulk.length} events before the close`)
})

t.test('a peer that does not answer pings is dropped', async (t) => {
  const pinging = await build(t, {}, { realtime: { pingIntervalMs: 100 } })
  await pinging.listen({ host: '127.0.0.1', port: 0 })
  const at = `http://127.0.0.1:${(pinging.server.address() as AddressInfo).port}`
  // A frozen peer: `ws` answers pings by itself unless told not to.
  const frozen = new WebSocket(`${at.replace('http', 'ws')}/api/v1/ws`, { autoPong: false })
  t.teardown(() => frozen.terminate())
  const socket = new TestSocket(frozen)
  await new Promise((resolve) => frozen.once('open', resolve))
  const alive = await connectTo(t, at, {})
  const closed = await socket.closed
  t.equal(closed.code, 1006, 'terminated: no close handshake with a dead peer')
  t.same(await alive.ask({ type: 'ping' }), { type: 'pong' }, 'a peer that answers stays')
})

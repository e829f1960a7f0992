import { once } from 'node:events'
import { createServer } from 'node:net'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { Webhook } from 'standardwebhooks'
import t, { type Test } from 'tap'
import { createDeliveryClient, type DeliveryClientOptions } from '../../src/webhooks/client.js'
import { receiver, type Handler } from './receiver.js'
import { newSecret, signedHeaders } from '../../src/webhooks/signing.js'

function client (t: Test, options: Partial<DeliveryClientOptions> = {}) {
  const delivery = createDeliveryClient({ allowPrivate: true, ...options })
  t.teardown(() => delivery.close())
  return delivery
}

/** A port nothing listens on: one the system just gave out and that was closed again. */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

t.test('post → a 200 receiver gets a signed POST that it can verify', async (t) => {
  const { url, received } = await receiver(t, async (_request, reply) => reply.code(200).send('thanks'))
  const secret = newSecret()
  const payload = JSON.stringify({ type: 'item.created', data: { id: 'itm_1', name: 'Chaise "Lounge" ✓' } })
  const headers = signedHeaders(secret, 'evt_42', new Date(), payload)

  const result = await client(t).post(`${url}/hooks/catalog?source=test`, payload, headers)

  t.match(result, { status: 200, error: null, retryAfterMs: null, responseBody: 'thanks', refused: false })
  t.ok(Number.isInteger(result.durationMs) && result.durationMs >= 0 && result.durationMs < 5000, `durationMs ${result.durationMs}`)
  t.equal(received.length, 1)
  const [request] = received
  t.match(request, { method: 'POST', url: '/hooks/catalog?source=test', body: payload })
  t.match(request?.headers, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(payload)),
    'user-agent': /^catalog-api-webhooks\/[0-9]/,
    'webhook-id': 'evt_42',
    'webhook-timestamp': /^[0-9]+$/,
    'webhook-signature': /^v1,[A-Za-z0-9+/]+={0,2}$/
  })
  t.same(new Webhook(secret).verify(request?.body ?? '', request?.headers as Record<string, string>), JSON.parse(payload))
  t.throws(() => new Webhook(newSecret()).verify(request?.body ?? '', request?.headers as Record<string, string>), { name: 'WebhookVerificationError' })
})

t.test('post → an empty answer gives an empty body, not null', async (t) => {
  const { url } = await receiver(t, async (_request, reply) => reply.code(204).send())
  t.match(await client(t).post(url, '{}', {}), { status: 204, responseBody: '', error: null })
})

t.test('post → 503 with Retry-After: 7 gives retryAfterMs 7000', async (t) => {
  const { url } = await receiver(t, async (_request, reply) => reply.code(503).header('retry-after', '7').send('busy'))
  t.match(await client(t).post(url, '{}', {}), { status: 503, retryAfterMs: 7000, responseBody: 'busy', error: null })
})

t.test('post → 429 with Retry-After as an HTTP date gives the time until then', async (t) => {
  const { url } = await receiver(t, async (_request, reply) => reply.code(429).header('retry-after', new Date(Date.now() + 120_000).toUTCString()).send())
  const { status, retryAfterMs } = await client(t).post(url, '{}', {})
  t.equal(status, 429)
  t.ok(retryAfterMs !== null && retryAfterMs > 115_000 && retryAfterMs <= 120_000, `retryAfterMs ${retryAfterMs}`)
})

t.test('post → Retry-After is capped at an hour, read only on 429 and 503, and ignored when unreadable', async (t) => {
  const answers: Array<[number, string]> = [[503, '86400'], [500, '7'], [200, '7'], [429, 'soon'], [503, new Date(Date.now() - 60_000).toUTCString()]]
  const { url } = await receiver(t, async (request, reply) => {
    const [status, retryAfter] = answers[Number((request.query as { n: string }).n)] ?? [500, '']
    return await reply.code(status).header('retry-after', retryAfter).send()
  })
  const delivery = client(t)
  const results = await Promise.all(answers.map((_answer, n) => delivery.post(`${url}/?n=${n}`, '{}', {})))
  t.same(results.map((result) => [result.status, result.retryAfterMs]), [[503, 3_600_000], [500, null], [200, null], [429, null], [503, 0]])
})

t.test('post → a receiver that never answers times out at timeoutMs', async (t) => {
  const { url, received } = await receiver(t, () => new Promise(() => {}))
  const result = await client(t, { timeoutMs: 300 }).post(url, '{}', {})
  t.match(result, { status: null, error: 'timed out after 300 ms', responseBody: null, refused: false })
  t.ok(result.durationMs >= 290 && result.durationMs < 3000, `durationMs ${result.durationMs}`)
  t.equal(received.length, 1)
})

t.test('post → a response whose body never ends keeps its status and what arrived by the deadline', async (t) => {
  const { url } = await receiver(t, async (_request, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'text/plain' })
    reply.raw.write('partial')
    return await reply.hijack()
  })
  const result = await client(t, { timeoutMs: 300 }).post(url, '{}', {})
  t.match(result, { status: 200, error: null, responseBody: 'partial' })
  t.ok(result.durationMs >= 290 && result.durationMs < 3000, `durationMs ${result.durationMs}`)
})

t.test('post → a 302 is the answer: the redirect is not followed', async (t) => {
  const second = await receiver(t)
  const { url } = await receiver(t, async (_request, reply) => reply.redirect(`${second.url}/elsewhere`, 302))
  const result = await client(t).post(url, '{}', {})
  t.match(result, { status: 302, error: null, refused: false })
  t.equal(second.received.length, 0)
})

t.test('post → of a 1 MB answer only the first 64 KiB is read, and the call returns promptly', async (t) => {
  const { url } = await receiver(t, async (_request, reply) => reply.send('x'.repeat(1_048_576)))
  const result = await client(t).post(url, '{}', {})
  t.equal(result.status, 200)
  t.equal(result.responseBody?.length, 65_536)
  t.ok(result.durationMs < 3000, `durationMs ${result.durationMs}`)
})

t.test('post → a body that never ends is not read past the limit: the connection is closed', async (t) => {
  let closed: Promise<unknown> = new Promise(() => {})
  const { url } = await receiver(t, async (_request, reply) => {
    closed = once(reply.raw, 'close')
    return await reply.send(Readable.from((function * () {
      for (;;) yield Buffer.alloc(16_384, 'y')
    })()))
  })
  const result = await client(t, { maxResponseBytes: 10 }).post(url, '{}', {})
  t.match(result, { status: 200, error: null, responseBody: 'yyyyyyyyyy' })
  t.ok(result.durationMs < 3000, `durationMs ${result.durationMs}`)
  t.equal(await Promise.race([closed.then(() => 'closed'), sleep(3000, 'still open', { ref: false })]), 'closed')
})

t.test('post → a character cut at the limit is left out, and NUL is replaced (Postgres text cannot hold it)', async (t) => {
  const { url } = await receiver(t, async (_request, reply) => reply.send(Buffer.from('ab\u0000é', 'utf8')))
  t.equal((await client(t, { maxResponseBytes: 4 }).post(url, '{}', {})).responseBody, 'ab\uFFFD')
  t.equal((await client(t, { maxResponseBytes: 5 }).post(url, '{}', {})).responseBody, 'ab\uFFFDé')
})

t.test('post → connection refused (a closed port) is an error, without a status', async (t) => {
  const port = await closedPort()
  const result = await client(t).post(`http://127.0.0.1:${port}/`, '{}', {})
  t.match(result, { status: null, error: 'connection refused', retryAfterMs: null, responseBody: null, refused: false })
})

t.test('post → the guarded client refuses 127.0.0.1, localhost and [::1] before any request', async (t) => {
  const { url, received } = await receiver(t)
  const { port } = new URL(url)
  const guarded = client(t, { allowPrivate: false })
  for (const host of ['127.0.0.1', 'localhost', '[::1]', '[::ffff:127.0.0.1]', '2130706433']) {
    const result = await guarded.post(`http://${host}:${port}/`, '{}', {})
    t.match(result, { status: null, error: /^webhook URLs must not resolve to a loopback, private, link-local or metadata address \(/, refused: true }, host)
  }
  t.equal(received.length, 0)
})

t.test('post → what is not an http(s) URL is refused', async (t) => {
  const delivery = client(t)
  t.match(await delivery.post('not a url', '{}', {}), { status: null, error: 'not a valid URL', refused: true })
  t.match(await delivery.post('ftp://127.0.0.1/', '{}', {}), { status: null, error: 'not an http or https URL (ftp)', refused: true })
})

/** A handler that holds each request until `expected` are in flight at once (or `patienceMs` passes), noting the most. */
function barrier (expected: number, patienceMs: number) {
  const state = { inFlight: 0, most: 0 }
  let release = () => {}
  const allIn = new Promise<void>((resolve) => { release = resolve })
  const handler: Handler = async () => {
    state.inFlight++
    state.most = Math.max(state.most, state.inFlight)
    if (state.inFlight === expected) release()
    await Promise.race([allIn, sleep(patienceMs, undefined, { ref: false })])
    state.inFlight--
    return 'ok'
  }
  return { state, handler }
}

t.test('post → posts to two receivers run concurrently', async (t) => {
  const { state, handler } = barrier(2, 5000)
  const [first, second] = [await receiver(t, handler), await receiver(t, handler)]
  const delivery = client(t)
  const results = await Promise.all([delivery.post(first.url, '{}', {}), delivery.post(second.url, '{}', {})])
  t.same(results.map((result) => result.status), [200, 200])
  t.equal(state.most, 2, 'both requests were in flight at the same time')
})

t.test('post → posts to one receiver share its connections, at most `connections` at once', async (t) => {
  const concurrent = barrier(2, 5000)
  const parallel = await receiver(t, concurrent.handler)
  const delivery = client(t)
  await Promise.all([delivery.post(parallel.url, '{}', {}), delivery.post(parallel.url, '{}', {})])
  t.equal(concurrent.state.most, 2, 'two connections by default')

  const single = barrier(2, 200)
  const serial = await receiver(t, single.handler)
  const oneConnection = client(t, { connections: 1 })
  await Promise.all([oneConnection.post(serial.url, '{}', {}), oneConnection.post(serial.url, '{}', {})])
  t.equal(single.state.most, 1, 'one at a time with connections: 1')
  t.equal(new Set(serial.received.map((request) => request.remotePort)).size, 1, 'over one kept-alive connection')
})

t.test('close → waits for posts under way', async (t) => {
  const { url } = await receiver(t, async () => { await sleep(100); return 'late' })
  const delivery = createDeliveryClient({ allowPrivate: true })
  const pending = delivery.post(url, '{}', {})
  await sleep(20)
  await delivery.close()
  t.match(await pending, { status: 200, responseBody: 'late' })
})

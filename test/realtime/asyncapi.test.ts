import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Parser } from '@asyncapi/parser'
import { Ajv2019 } from 'ajv/dist/2019.js'
import addFormats from 'ajv-formats'
import t from 'tap'
import { EVENT_NAMES } from '../../schemas/events.js'
import { CLIENT_MESSAGES } from '../../schemas/ws.js'
import { openapiDir } from '../../src/cli/openapi.js'
import { authHeader, build } from '../helper.js'
import { finished, ndjson, startImport } from '../jobs/helpers.js'
import { connect, createItem, subscribe, user } from './helpers.js'

interface AsyncApi {
  asyncapi: string
  channels: { live: { address: string, messages: Record<string, unknown> } }
  operations: Record<string, { action: 'send' | 'receive', messages: Array<{ $ref: string }> }>
  components: { schemas: Record<string, unknown>, messages: Record<string, { name: string, payload: { $ref: string } }> }
}

const app = await build(t)
const res = await app.inject({ url: '/asyncapi.json' })
const document = res.json<AsyncApi>()

t.test('GET /asyncapi.json → the AsyncAPI 3.0 document of the WebSocket and SSE channels, valid for @asyncapi/parser', async (t) => {
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.headers['ratelimit-limit'], undefined, 'not rate limited, like the docs')
  t.equal(document.asyncapi, '3.0.0')
  t.equal(document.channels.live.address, '/api/v1/ws')
  const { document: parsed, diagnostics } = await new Parser().parse(res.body)
  t.same(diagnostics.filter((diagnostic) => diagnostic.severity <= 1).map((diagnostic) => `${diagnostic.code}: ${diagnostic.message}`), [], 'no error, no warning')
  t.ok(parsed !== undefined)
  t.same(parsed?.operations().filterByReceive().map((operation) => operation.id()).sort(), ['echo', 'ping', 'subscribe', 'unsubscribe'])
  const sent = (id: string) => parsed?.operations().get(id)?.messages().all().map((message) => message.name()).sort()
  const events = ['itemCreatedEvent', 'itemDeletedEvent', 'itemUpdatedEvent', 'jobUpdatedEvent']
  t.same(parsed?.operations().filterBySend().map((operation) => operation.id()).sort(), ['sendError', 'sendEvent', 'streamEvents'])
  t.same(sent('sendEvent'), events, 'the WebSocket sends every event')
  t.same(sent('streamEvents'), ['error', ...events], 'and so does the SSE stream, with errors')
  t.same(parsed?.channels().all().map((channel) => channel.address()).sort(), ['/api/v1/events', '/api/v1/ws'])
})

t.test('every client message type and every event has its message in the document', async (t) => {
  const names = Object.values(document.components.messages).map((message) => message.name)
  for (const type of Object.keys(CLIENT_MESSAGES)) t.ok(names.includes(type), type)
  for (const name of EVENT_NAMES) {
    const key = name.replace(/\.(\w)/, (_, letter: string) => letter.toUpperCase()) + 'Event'
    t.ok(names.includes(key), `${name} → ${key}`)
  }
})

t.test('npm run openapi writes the same document to openapi/asyncapi.json', async (t) => {
  t.same(JSON.parse(await readFile(join(openapiDir, 'asyncapi.json'), 'utf8')), document)
})

t.test('the OpenAPI description and the link index point to it', async (t) => {
  const openapi = (await app.inject({ url: '/openapi.json' })).json<{ info: { description: string } }>()
  t.match(openapi.info.description, '[/asyncapi.json](/asyncapi.json)')
  t.equal((await app.inject({ url: '/' })).json<{ links: { asyncapi: string } }>().links.asyncapi, '/asyncapi.json')
})

t.test('what the server really sends obeys the document, checked by a standard validator at its defaults', async (t) => {
  const ajv = new Ajv2019({ strict: false })
  addFormats.default(ajv)
  for (const [id, schema] of Object.entries(document.components.schemas)) ajv.addSchema(schema as object, `#/components/schemas/${id}`)
  const payloadOf = Object.fromEntries(Object.values(document.components.messages).map((message) => [message.name, message.payload.$ref]))
  const ada = await user(app)
  const socket = await connect(t, app, { token: ada.token })
  await subscribe(socket, ['items', `user:${ada.id}`])
  socket.send({ type: 'echo', data: { any: ['json'] } })
  socket.send({ type: 'ping' })
  socket.send({ type: 'subscribe', topics: ['nope'] })
  const item = await createItem(app, ada.token)
  await app.inject({ method: 'PATCH', url: `/api/v1/items/${item.id}`, headers: authHeader(ada.token), payload: { tags: ['x'] } })
  await app.inject({ method: 'DELETE', url: `/api/v1/items/${item.id}`, headers: authHeader(ada.token) })
  const job = await startImport(app, ada.token, { filename: 'two.ndjson', content: ndjson([{ name: 'ok', price: 1 }, { name: '', price: 1 }]) })
  await finished(app, ada.token, job.id)
  socket.send({ type: 'unsubscribe', topics: ['items'] })
  const kinds = new Set<string>()
  for (const message of await socket.rest(500)) {
    const key = message.type === 'event' ? `${String(message.name).replace(/\.(\w)/, (_, letter: string) => letter.toUpperCase())}Event` : message.type
    kinds.add(key)
    const validate = ajv.getSchema(payloadOf[key] ?? '')
    if (validate === undefined) t.fail(`${key} has no schema in the document`)
    else t.ok(validate(message), `${key} ${JSON.stringify(validate.errors ?? [])}`)
  }
  t.same([...kinds].sort(), ['echo', 'error', 'itemCreatedEvent', 'itemDeletedEvent', 'itemUpdatedEvent', 'jobUpdatedEvent', 'pong', 'unsubscribed'])
})

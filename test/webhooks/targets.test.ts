import { eq } from 'drizzle-orm'
import t from 'tap'
import { webhookDeliveries, webhooks } from '../../src/db/schema.js'
import { SecretBox } from '../../src/webhooks/sealing.js'
import { newSecret } from '../../src/webhooks/signing.js'
import { authHeader, build, login, signUp } from '../helper.js'
import { receiver } from './receiver.js'

// The server as deployed: private targets are refused. Every target here is on this machine's loopback.
const app = await build(t, {}, { resources: { webhooks: { retryBaseMs: 100, timeoutMs: 1000, pollMs: 100 } } })
const user = await signUp(app)
const pair = await login(app, user.email, undefined, 'webhooks items:write')

const create = async (url: string) =>
  await app.inject({ method: 'POST', url: '/api/v1/webhooks', headers: authHeader(pair), payload: { url, topics: ['items'] } })

t.test('POST /api/v1/webhooks → 400 for loopback in every spelling, and nothing stored', async (t) => {
  const spellings = ['http://127.0.0.1:9/', 'http://127.0.0.2/', 'http://localhost/', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://2130706433/', 'http://0x7f000001/', 'http://127.1/']
  for (const url of spellings) {
    const res = await create(url)
    t.equal(res.statusCode, 400, url)
    t.match(res.json(), { type: 'urn:catalog-api:problem:unsafe-webhook-url', errors: [{ in: 'body', path: '/url' }] }, url)
  }
  t.equal((await app.db.select().from(webhooks).where(eq(webhooks.ownerId, user.id))).length, 0)
  const patched = await app.inject({ method: 'PATCH', url: '/api/v1/webhooks/0196f1c2-7a8b-7cde-8f01-23456789abcd', headers: authHeader(pair), payload: { url: 'http://[::1]/' } })
  t.equal(patched.statusCode, 404, 'an unknown webhook is 404 before its URL is looked at')
})

t.test('POST /api/v1/webhooks → https only in production, unless private targets are allowed', async (t) => {
  const production = await build(t, { NODE_ENV: 'production' })
  const owner = await signUp(production)
  const token = await login(production, owner.email, undefined, 'webhooks')
  const res = await production.inject({ method: 'POST', url: '/api/v1/webhooks', headers: authHeader(token), payload: { url: 'http://[::1]/', topics: ['items'] } })
  t.equal(res.statusCode, 400)
  t.match(res.json<{ detail: string }>().detail, /https/)
})

t.test('a target that turns private after creation (DNS rebinding) is refused at delivery; the receiver gets nothing', async (t) => {
  const target = await receiver(t)
  // As if the name had resolved to a public address when the endpoint was created.
  const secret = new SecretBox(app.deriveKey('webhook-secrets')).seal(newSecret())
  const id = '0196f1c2-7a8b-7cde-8f01-0000000000aa'
  await app.db.insert(webhooks).values({ id, ownerId: user.id, url: `${target.url}/hook`, topics: ['items'], secret })
  const item = await app.inject({ method: 'POST', url: '/api/v1/items', headers: authHeader(pair), payload: { name: 'Lamp', price: 3 } })
  t.equal(item.statusCode, 201)
  let attempts: Array<typeof webhookDeliveries.$inferSelect> = []
  for (let waited = 0; attempts.length === 0 && waited < 10_000; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    attempts = await app.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, id))
  }
  t.match(attempts, [{ outcome: 'failed', statusCode: null, error: /loopback, private, link-local or metadata/ }])
  t.equal(target.received.length, 0)
})

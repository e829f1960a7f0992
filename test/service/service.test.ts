import t from 'tap'
import { build } from '../helper.js'

t.test('GET / → the link index', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const links = res.json<{ links: Record<string, string> }>().links
  t.match(links, { docs: '/docs', openapi: '/openapi.json', asyncapi: '/asyncapi.json', dashboard: '/dashboard', websocket: '/api/v1/ws', events: '/api/v1/events' })
  for (const [name, path] of Object.entries(links)) {
    t.not((await app.inject({ url: path })).statusCode, 404, `${name} (${path}) is served`)
  }
})

t.test('GET /health/live and /health/ready → 200', async (t) => {
  const app = await build(t)
  t.same((await app.inject({ url: '/health/live' })).json(), { status: 'ok' })
  const ready = await app.inject({ url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok' })
})

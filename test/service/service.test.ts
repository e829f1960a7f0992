import t from 'tap'
import { build } from '../helper.js'

t.test('GET / → the link index', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.json().links.docs, '/docs')
  t.equal(res.json().links.openapi, '/openapi.json')
})

t.test('GET /health/live and /health/ready → 200', async (t) => {
  const app = await build(t)
  t.same((await app.inject({ url: '/health/live' })).json(), { status: 'ok' })
  const ready = await app.inject({ url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok' })
})

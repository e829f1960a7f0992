import { Type } from '@sinclair/typebox'
import t from 'tap'
import { build } from '../helper.js'

// Routes of the test's own, documented, that answer on and off their contract.
const documented = {
  tags: ['service'],
  summary: 'A test route',
  description: 'Answers as the test says.',
  response: {
    200: {
      description: 'A count',
      headers: { 'X-Count': { type: 'integer', minimum: 0, description: 'The count again' } },
      content: { 'application/json': { schema: Type.Object({ count: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }) } }
    }
  }
}

const app = await build(t, {}, {}, (app) => {
  app.get('/test/on-contract', { schema: { ...documented, operationId: 'testOnContract' } }, async (_request, reply) =>
    reply.header('x-count', '3').send({ count: 3 }))
  // The type provider knows the documented statuses: the point is to answer another one.
  app.get('/test/undocumented-status', { schema: { ...documented, operationId: 'testUndocumentedStatus' } }, async (_request, reply) =>
    reply.code(202 as 200).send({ count: 1 }))
  app.get('/test/off-schema-body', { schema: { ...documented, operationId: 'testOffSchemaBody' } }, async (_request, reply) =>
    reply.type('application/json').serializer(JSON.stringify).send({ count: -1, extra: true }))
  app.get('/test/undeclared-header', { schema: { ...documented, operationId: 'testUndeclaredHeader' } }, async (_request, reply) =>
    reply.header('x-secret', 'leaked').send({ count: 1 }))
  app.get('/test/bad-header', { schema: { ...documented, operationId: 'testBadHeader' } }, async (_request, reply) =>
    reply.header('x-count', 'many').send({ count: 1 }))
  app.get('/test/undocumented-type', { schema: { ...documented, operationId: 'testUndocumentedType' } }, async (_request, reply) =>
    reply.type('text/plain').serializer(String).send('3'))
})

t.test('a response on its documented contract goes out untouched', async (t) => {
  const res = await app.inject({ url: '/test/on-contract' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { count: 3 })
})

t.test('a response off its contract becomes a 500 saying what is wrong, so the test that caused it fails', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['/test/undocumented-status', /→ 202 is off its documented contract: status 202 is not documented/],
    ['/test/off-schema-body', /body: \(root\) must NOT have additional properties, \/count must be >= 0/],
    ['/test/undeclared-header', /header x-secret is not declared/],
    ['/test/bad-header', /header x-count: \(root\) must be integer/],
    ['/test/undocumented-type', /media type text\/plain is not documented for 200/]
  ]
  for (const [url, expected] of cases) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 500, url)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.match(res.json(), { type: 'urn:catalog-api:test:off-contract', detail: expected }, url)
  }
})

t.test('errors are held to the contract too: a documented problem passes', async (t) => {
  const res = await app.inject({ url: '/api/v1/items/not-a-uuid' })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { type: 'urn:catalog-api:problem:validation-error' })
})

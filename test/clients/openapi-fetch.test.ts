import type { AddressInfo } from 'node:net'
import { eq } from 'drizzle-orm'
import t from 'tap'
import { walkthrough } from '../../examples/client.js'
import { items } from '../../src/db/schema.js'
import { build } from '../helper.js'

t.test('examples/client.ts (openapi-fetch over openapi/schema.d.ts) runs its whole tour against a listening server', async (t) => {
  const app = await build(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const result = await walkthrough(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, 'client@example.com')
  t.match(result.user, { email: 'client@example.com', fullName: 'Ada Lovelace' })
  t.match(result.created, { name: 'Walnut desk', price: 249.99, tags: ['furniture'], version: 1 })
  t.equal(result.pages, 2, 'four items, two a page, followed by cursor')
  t.match(result.patched, { price: 199.99, version: 2 }, 'patched with If-Match')
  t.ok(result.notModified, 'a conditional GET with the new ETag is 304')
  t.match(result.withImage, { imageUrl: `/api/v1/items/${result.created.id}/image`, version: 3 })
  t.match(result.job, { status: 'succeeded', result: { created: 1, failed: 1, errors: [{ line: 3 }] } })
  t.same(await app.db.select().from(items).where(eq(items.id, result.created.id)), [], 'deleted with If-Match')
})

import { asc, desc, eq, inArray } from 'drizzle-orm'
import t from 'tap'
import { items } from '../../src/db/schema.js'
import { insertItem } from '../../src/items/repository.js'
import { CursorCodec } from '../../src/lib/pagination.js'
import { build, signUp } from '../helper.js'

const app = await build(t)
const alice = await signUp(app)
const bob = await signUp(app)

// Straight through the repository: 48 items, four per timestamp, prices and names repeating so every sort has ties.
const PRICES = [0.07, 1.15, 19.99, 7]
const DESCRIPTIONS = ['She runs every morning', 'A running track', 'Walnut and oak', null]
const base = Date.UTC(2025, 0, 1)
const seeded: Array<{ id: string, ownerId: string, price: number, tags: string[], description: string | null }> = []
for (let i = 0; i < 48; i++) {
  const input = {
    name: `Item ${String(i % 12).padStart(2, '0')}`,
    description: DESCRIPTIONS[i % 4] ?? null,
    price: PRICES[i % 4] ?? 0,
    tags: [...(i % 2 === 0 ? ['even'] : []), ...(i % 3 === 0 ? ['three'] : [])]
  }
  const ownerId = i % 5 === 0 ? bob.id : alice.id
  const row = await insertItem(app.db, ownerId, input)
  const createdAt = new Date(base + Math.floor(i / 4) * 1000).toISOString()
  const updatedAt = new Date(base + Math.floor(i / 6) * 1000).toISOString()
  await app.db.update(items).set({ createdAt, updatedAt }).where(eq(items.id, row.id))
  seeded.push({ id: row.id, ownerId, price: input.price, tags: input.tags, description: input.description })
}
const seededIds = new Set(seeded.map((item) => item.id))

interface Page { data: Array<{ id: string, price: number, name: string, tags: string[] }>, nextCursor: string | null }

const list = (query: string) => app.inject({ url: `/api/v1/items?${query}` })

/** Every page of a listing, following nextCursor; `between` runs after each page. */
async function walk (query: string, between: (page: number) => Promise<void> = async () => undefined) {
  const ids: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const res = await list(`${query}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)
    if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`)
    const page = res.json<Page>()
    ids.push(...page.data.map((item) => item.id))
    cursor = page.nextCursor
    pages++
    await between(pages)
  } while (cursor !== null && pages < 100)
  return { ids, pages }
}

const COLUMNS = { name: items.name, price: items.price, createdAt: items.createdAt, updatedAt: items.updatedAt }

/** The full order a sort spec means, computed by the database in one query: the id follows the last key's direction. */
async function expectedOrder (sort: string) {
  const keys = sort.split(',').map((entry) => ({ column: COLUMNS[entry.replace('-', '') as keyof typeof COLUMNS], descending: entry.startsWith('-') }))
  const orderBy = [...keys, { column: items.id, descending: keys.at(-1)?.descending ?? false }]
    .map((key) => key.descending ? desc(key.column) : asc(key.column))
  const rows = await app.db.select({ id: items.id }).from(items).where(inArray(items.id, [...seededIds])).orderBy(...orderBy)
  return rows.map((row) => row.id)
}

const SORTS = ['name', '-name', 'price', '-price', 'createdAt', '-createdAt', 'updatedAt', '-updatedAt', 'price,-name', '-price,name,createdAt', 'name,-updatedAt']

for (const sort of SORTS) {
  t.test(`GET /api/v1/items?sort=${sort} → pages of 7 cover all 48 items in order, with no duplicate or gap`, async (t) => {
    const expected = await expectedOrder(sort)
    const { ids, pages } = await walk(`limit=7&sort=${sort}`)
    t.equal(pages, 7)
    t.equal(new Set(ids).size, ids.length, 'no duplicates')
    t.same(ids, expected)
  })
}

for (const sort of ['-createdAt', 'price', 'name,-price']) {
  t.test(`GET /api/v1/items?sort=${sort} → no duplicate or gap while items are inserted mid-walk`, async (t) => {
    const added: string[] = []
    const { ids } = await walk(`limit=5&sort=${sort}`, async (page) => {
      if (page % 3 !== 1) return
      for (const price of [0.07, 7, 19.99]) added.push((await insertItem(app.db, alice.id, { name: `Item 05 late ${page}`, price })).id)
    })
    t.equal(new Set(ids).size, ids.length, 'no duplicates')
    t.same(ids.filter((id) => seededIds.has(id)), await expectedOrder(sort), 'every original item, in order')
    t.ok(ids.every((id) => seededIds.has(id) || added.includes(id)))
    await app.db.delete(items).where(inArray(items.id, added))
  })
}

t.test('GET /api/v1/items → newest first by default, 20 per page, Link to the next page', async (t) => {
  const res = await list('')
  t.equal(res.statusCode, 200)
  const page = res.json<Page>()
  t.equal(page.data.length, 20)
  t.same(page.data.map((item) => item.id), (await expectedOrder('-createdAt')).slice(0, 20))
  t.equal(res.headers.link, `</api/v1/items?cursor=${encodeURIComponent(page.nextCursor ?? '')}>; rel="next"`)
  const last = await list('limit=100')
  t.equal(last.json().data.length, 48)
  t.equal(last.json().nextCursor, null)
  t.equal(last.headers.link, undefined, 'no Link on the last page')
})

t.test('GET /api/v1/items → the Link URL keeps the filters and sort and leads to the next page', async (t) => {
  const res = await list('limit=3&sort=price,-name&tag=even&minPrice=1')
  const link = res.headers.link as string
  t.match(link, /^<\/api\/v1\/items\?[^>]+>; rel="next"$/)
  const target = link.slice(1, link.indexOf('>'))
  const params = new URL(target, 'http://localhost').searchParams
  t.same([params.get('limit'), params.get('sort'), params.get('tag'), params.get('minPrice')], ['3', 'price,-name', 'even', '1'])
  const next = await app.inject({ url: target })
  t.equal(next.statusCode, 200)
  const first = res.json<Page>().data.map((item) => item.id)
  t.notOk(next.json<Page>().data.some((item) => first.includes(item.id)))
})

t.test('GET /api/v1/items → filters by every tag given, owner and price range, combined', async (t) => {
  const ids = async (query: string) => new Set((await walk(`limit=10&${query}`)).ids)
  const expect = (keep: (item: typeof seeded[number]) => boolean) => new Set(seeded.filter(keep).map((item) => item.id))

  t.same(await ids('tag=even'), expect((item) => item.tags.includes('even')))
  t.same(await ids('tag=even&tag=three'), expect((item) => item.tags.includes('even') && item.tags.includes('three')))
  t.same(await ids(`ownerId=${bob.id}`), expect((item) => item.ownerId === bob.id))
  t.same(await ids('minPrice=1.15&maxPrice=7'), expect((item) => item.price >= 1.15 && item.price <= 7))
  t.same(await ids('minPrice=19.99'), expect((item) => item.price >= 19.99))
  t.same(await ids(`tag=three&ownerId=${alice.id}&maxPrice=7&sort=-price`),
    expect((item) => item.tags.includes('three') && item.ownerId === alice.id && item.price <= 7))
  t.same(await ids('tag=nothing'), new Set())
  t.same(await ids('minPrice=7&maxPrice=7'), expect((item) => item.price === 7))
})

t.test('GET /api/v1/items?q= → full-text search with English stemming over name and description', async (t) => {
  const ids = async (query: string) => new Set((await walk(`limit=50&${query}`)).ids)
  const running = await ids('q=running')
  t.same(running, new Set(seeded.filter((item) => item.description !== null && /runs|running/.test(item.description)).map((item) => item.id)), '"running" matches "runs"')
  t.equal(running.size, 24)
  t.same(await ids('q=run'), running)
  t.same(await ids('q=walnut'), new Set(seeded.filter((item) => item.description?.includes('Walnut') === true).map((item) => item.id)))
  t.equal((await ids('q=running -track')).size, 12, 'web search syntax')
  t.same(await ids('q=running&tag=even&tag=three'),
    new Set(seeded.filter((item) => running.has(item.id) && item.tags.includes('even') && item.tags.includes('three')).map((item) => item.id)))
  t.equal((await ids('q="item 03"')).size, 4, 'a phrase over the name')
  t.equal((await list('q=%22')).statusCode, 200, 'stray syntax is not an error')
})

t.test('GET /api/v1/items → 400 for a tampered, foreign or mismatched cursor', async (t) => {
  const page = (await list('limit=5&sort=price&tag=even')).json<Page>()
  const cursor = page.nextCursor ?? ''
  const [payload = '', signature = ''] = cursor.split('.')
  const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { b: string, k: unknown[] }
  const forged = `${Buffer.from(JSON.stringify({ ...decoded, k: ['999', decoded.k[1]] })).toString('base64url')}.${signature}`
  const foreign = new CursorCodec(Buffer.alloc(32, 7)).encode(['1.15', '0196f1c2-7a8b-7cde-8f01-23456789abcd'], { resource: 'items', sort: 'price', tags: ['even'] })
  const cases = {
    tampered: `limit=5&sort=price&tag=even&cursor=${forged}`,
    garbage: 'limit=5&sort=price&tag=even&cursor=not-a-cursor',
    truncated: `limit=5&sort=price&tag=even&cursor=${cursor.slice(0, -3)}`,
    foreign: `limit=5&sort=price&tag=even&cursor=${foreign}`,
    'another sort': `limit=5&sort=-price&tag=even&cursor=${cursor}`,
    'another filter': `limit=5&sort=price&tag=even&minPrice=1&cursor=${cursor}`,
    'fewer tags': `limit=5&sort=price&cursor=${cursor}`
  }
  for (const [name, query] of Object.entries(cases)) {
    const res = await list(query)
    t.equal(res.statusCode, 400, name)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.same(res.json().errors.map((error: { in: string, path: string }) => [error.in, error.path]), [['query', '/cursor']], name)
  }
  t.equal((await list(`limit=9&sort=price&tag=even&cursor=${cursor}`)).statusCode, 200, 'another page size is fine')
  t.equal((await list(`limit=5&sort=price&tag=even&tag=even&cursor=${cursor}`)).statusCode, 200, 'a repeated tag is the same filter')
})

t.test('GET /api/v1/items → 400 for bad limits, sorts, prices and unknown parameters', async (t) => {
  const cases: Record<string, string> = {
    'limit=0': '/limit',
    'limit=101': '/limit',
    'limit=ten': '/limit',
    // Ajv coerces these to Infinity, which its range checks let through.
    'limit=Infinity': '/limit',
    'limit=1e400': '/limit',
    'minPrice=Infinity': '/minPrice',
    'maxPrice=-1e400': '/maxPrice',
    'sort=color': '/sort',
    'sort=price,price': '/sort',
    'sort=-createdAt,': '/sort',
    'sort=name,price,createdAt,updatedAt,name': '/sort',
    'minPrice=-1': '/minPrice',
    'maxPrice=0.001': '/maxPrice',
    'minPrice=5&maxPrice=4.99': '/minPrice',
    'ownerId=me': '/ownerId',
    [`q=${'x'.repeat(201)}`]: '/q',
    [Array.from({ length: 21 }, (_, i) => `tag=t${i}`).join('&')]: '/tag',
    [`tag=${'x'.repeat(41)}`]: '/tag/0',
    'color=red': '/color'
  }
  for (const [query, path] of Object.entries(cases)) {
    const res = await list(query)
    t.equal(res.statusCode, 400, query)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.same(res.json().errors.map((error: { in: string, path: string }) => [error.in, error.path]), [['query', path]], query)
  }
})

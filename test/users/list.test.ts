import { asc, desc, eq } from 'drizzle-orm'
import t from 'tap'
import { hashPassword } from '../../src/auth/passwords.js'
import { users } from '../../src/db/schema.js'
import { CursorCodec } from '../../src/lib/pagination.js'
import { insertUser } from '../../src/users/repository.js'
import { authHeader, build, login } from '../helper.js'

const ROOT = { FIRST_SUPERUSER_EMAIL: 'root@example.com', FIRST_SUPERUSER_PASSWORD: 'root-password-123' }
const app = await build(t, { AUTH_RATE_LIMIT_PER_MINUTE: '1000', ...ROOT })
const admin = authHeader(await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD, 'admin'))

// Fixtures go straight to the repository with one precomputed hash: signing 48 users up through HTTP would hash 48 times.
const passwordHash = await hashPassword('fixture password')
const base = Date.UTC(2025, 0, 1)
for (let i = 0; i < 48; i++) {
  const row = await insertUser(app.db, {
    email: `${i % 3 === 0 ? 'Person' : 'person'}-${String(47 - i).padStart(2, '0')}@${i % 2 === 0 ? 'even' : 'odd'}.example.com`,
    passwordHash,
    fullName: `Fixture ${i}`,
    isSuperuser: i % 10 === 0
  })
  // Four users share each timestamp, so the id has to break the ties.
  const at = new Date(base + Math.floor(i / 4) * 1000)
  await app.db.update(users).set({ createdAt: at, updatedAt: at, isActive: i % 5 !== 0 }).where(eq(users.id, row.id))
}

interface Page { data: Array<{ id: string, email: string, createdAt: string, isActive: boolean, isSuperuser: boolean }>, nextCursor: string | null }

const list = (query: string) => app.inject({ url: `/api/v1/users?${query}`, headers: admin })

/** Every page of a listing, by following nextCursor. */
async function walk (query: string, from: string | null = null) {
  const ids: string[] = []
  let cursor = from
  let pages = 0
  do {
    const res = await list(`${query}${cursor === null ? '' : `&cursor=${cursor}`}`)
    if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`)
    const page = res.json<Page>()
    ids.push(...page.data.map((user) => user.id))
    cursor = page.nextCursor
    pages++
  } while (cursor !== null && pages < 100)
  return { ids, pages }
}

const orders = {
  createdAt: [asc(users.createdAt), asc(users.id)],
  '-createdAt': [desc(users.createdAt), desc(users.id)],
  email: [asc(users.email), asc(users.id)],
  '-email': [desc(users.email), desc(users.id)]
}

for (const [sort, orderBy] of Object.entries(orders)) {
  t.test(`GET /api/v1/users?sort=${sort} → pages of 7 cover all 49 users in order, with no duplicate or gap`, async (t) => {
    const expected = (await app.db.select({ id: users.id }).from(users).orderBy(...orderBy)).map((row) => row.id)
    t.equal(expected.length, 49)
    const { ids, pages } = await walk(`limit=7&sort=${sort}`)
    t.equal(pages, 7)
    t.equal(new Set(ids).size, ids.length, 'no duplicates')
    t.same(ids, expected)
  })
}

t.test('GET /api/v1/users → the default page is 20 by createdAt, the last page has no cursor', async (t) => {
  const first = await list('')
  t.equal(first.statusCode, 200)
  t.equal(first.json().data.length, 20)
  const { ids } = await walk('limit=100')
  t.equal(ids.length, 49)
  const last = await list('limit=100')
  t.equal(last.json().nextCursor, null)
  t.equal(last.headers.link, undefined, 'no Link on the last page')
})

t.test('GET /api/v1/users → Link: rel="next" with the same filters and sort, and it works', async (t) => {
  const res = await list('limit=5&sort=-email&isActive=true')
  const page = res.json<Page>()
  t.type(page.nextCursor, 'string')
  const link = res.headers.link as string
  t.match(link, /^<\/api\/v1\/users\?[^>]+>; rel="next"$/)
  const url = new URL(link.slice(1, link.indexOf('>')), 'http://localhost')
  t.equal(url.searchParams.get('limit'), '5')
  t.equal(url.searchParams.get('sort'), '-email')
  t.equal(url.searchParams.get('isActive'), 'true')
  t.equal(url.searchParams.get('cursor'), page.nextCursor)
  const next = await app.inject({ url: link.slice(1, link.indexOf('>')), headers: admin })
  t.equal(next.statusCode, 200)
  t.equal(next.json().data.length, 5)
  t.notOk(next.json().data.some((user: { id: string }) => page.data.some((seen) => seen.id === user.id)))
})

t.test('GET /api/v1/users → filters by isActive, isSuperuser and email (substring, any case)', async (t) => {
  const inactive = (await walk('limit=100&isActive=false')).ids
  t.equal(inactive.length, 10)
  const superusers = await list('limit=100&isSuperuser=true')
  t.equal(superusers.json().data.length, 6)
  t.ok(superusers.json().data.every((user: { isSuperuser: boolean }) => user.isSuperuser))
  const byEmail = await list('limit=100&email=PERSON-1')
  t.same(byEmail.json().data.map((user: { email: string }) => user.email.toLowerCase().slice(0, 8)).sort(), Array(10).fill('person-1'))
  const even = await list('limit=100&email=@EVEN.')
  t.equal(even.json().data.length, 24)
  t.equal((await list('limit=100&email=%25')).json().data.length, 0, '% is literal')
  t.equal((await list('limit=100&email=_')).json().data.length, 0, '_ is literal')
})

t.test('GET /api/v1/users → a page stays stable when users are added between pages', async (t) => {
  const first = (await list('limit=10&sort=createdAt')).json<Page>()
  await insertUser(app.db, { email: 'late-comer@example.com', passwordHash })
  const rest = await walk('limit=10&sort=createdAt', first.nextCursor)
  const all = [...first.data.map((user) => user.id), ...rest.ids]
  t.equal(new Set(all).size, all.length, 'no duplicates')
  t.equal(all.length, 50, 'the new user comes last')
  await app.db.delete(users).where(eq(users.email, 'late-comer@example.com'))
})

t.test('GET /api/v1/users → 400 for a tampered, foreign or mismatched cursor', async (t) => {
  const page = (await list('limit=5&sort=email')).json<Page>()
  const cursor = page.nextCursor ?? ''
  const [payload = '', signature = ''] = cursor.split('.')
  const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { b: string, k: unknown[] }
  const forged = `${Buffer.from(JSON.stringify({ ...decoded, k: ['a', decoded.k[1]] })).toString('base64url')}.${signature}`
  const foreign = new CursorCodec(Buffer.alloc(32, 7)).encode(['a@example.com', '0196f1c2-7a8b-7cde-8f01-23456789abcd'], { resource: 'users', sort: 'email' })
  const cases = {
    tampered: `limit=5&sort=email&cursor=${forged}`,
    garbage: 'limit=5&sort=email&cursor=not-a-cursor',
    truncated: `limit=5&sort=email&cursor=${cursor.slice(0, -3)}`,
    foreign: `limit=5&sort=email&cursor=${foreign}`,
    'another sort': `limit=5&sort=-email&cursor=${cursor}`,
    'another filter': `limit=5&sort=email&isActive=true&cursor=${cursor}`
  }
  for (const [name, query] of Object.entries(cases)) {
    const res = await list(query)
    t.equal(res.statusCode, 400, name)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.same(res.json().errors.map((error: { in: string, path: string }) => [error.in, error.path]), [['query', '/cursor']], name)
  }
  t.equal((await list(`limit=9&sort=email&cursor=${cursor}`)).statusCode, 200, 'another page size is fine')
})

t.test('GET /api/v1/users → 400 for a limit out of range, an unknown sort or filter', async (t) => {
  for (const query of ['limit=0', 'limit=101', 'limit=ten', 'sort=name', 'isActive=maybe', 'role=admin']) {
    const res = await list(query)
    t.equal(res.statusCode, 400, query)
    t.equal(res.json().errors[0].in, 'query')
  }
})

t.test('GET /api/v1/users → 401 without a token, 403 without admin', async (t) => {
  t.equal((await app.inject({ url: '/api/v1/users' })).statusCode, 401)
  const plain = await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD)
  t.equal((await app.inject({ url: '/api/v1/users', headers: authHeader(plain) })).statusCode, 403)
})

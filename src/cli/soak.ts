// `npm run soak [-- --connections 50 --duration 60 --warmup 10 --users 8]`: a long run of mixed traffic squeezed
// into a minute. Starts the server (a child process, so its memory can be read) on 127.0.0.1 against DATABASE_URL,
// or targets a running one at SOAK_URL, whose rate limits (RATE_LIMIT_PER_MINUTE, RATE_LIMIT_PER_HOUR,
// AUTH_RATE_LIMIT_PER_MINUTE) must then be raised by whoever started it. Seeds users, items and images, then keeps
// `connections` workers busy, each one request at a time, with weighted scenarios: reads, lists followed by their
// cursor, writes with If-Match, conditional requests, image uploads, imports polled to their end, and requests
// that must fail (400, 401, 403, 404, 412, 415). Every request kind states the statuses it expects. After the
// warm-up, `duration` seconds are measured: requests per second, statuses and p50/p99 per kind, and the server's
// RSS then against the end. Exits non-zero on any socket error or timeout, unexpected status, failed check
// (an import that did not succeed, a replay that did not replay) or RSS growth past 10%.
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Pool, type Dispatcher } from 'undici'
import { projectRoot } from '../paths.js'
import { percentile } from './stats.js'
import { requireDatabaseUrl, startServer, type ServerProcess } from './server-process.js'

/** The most the server's RSS may grow from the end of the warm-up to the end of the run. */
const RSS_GROWTH_LIMIT = 0.1
/** A request without its response headers or body by then counts as a timeout. */
const REQUEST_TIMEOUT_MS = 10_000
/** An import job not finished by then counts as failed. */
const IMPORT_DEADLINE_MS = 30_000
/** Job polls back off from the first wait to the longest, as a patient client's would. */
const IMPORT_POLL_FIRST_MS = 250
const IMPORT_POLL_MAX_MS = 1000
/** RSS "after warm-up" and "at the end" are medians over this long: one sample may catch the heap just before a collection. */
const RSS_WINDOW_MS = 5_000
const SEEDED_ITEMS_PER_USER = 30
/** Every this many seeded items gets an image. */
const IMAGE_EVERY = 6
/** Items a worker keeps of its own; past it, a create scenario deletes one instead, so the table stays level. */
const OWNED_MAX = 10
const IMPORT_ROWS = 5
const ADJECTIVES = ['walnut', 'oak', 'brass', 'linen', 'marble', 'copper']
const NOUNS = ['desk', 'lamp', 'chair', 'shelf', 'rug', 'clock', 'vase', 'mirror']
const COLOURS = ['red', 'green', 'blue', 'amber', 'teal']

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: process.env.SOAK_CONNECTIONS ?? '50' },
    duration: { type: 'string', default: process.env.SOAK_DURATION ?? '60' },
    warmup: { type: 'string', default: process.env.SOAK_WARMUP ?? '10' },
    users: { type: 'string', default: process.env.SOAK_USERS ?? '8' }
  }
})
const connections = Number(values.connections)
const duration = Number(values.duration)
const warmup = Number(values.warmup)
const userCount = Number(values.users)
if (![connections, duration, userCount].every((value) => Number.isInteger(value) && value >= 1) || !Number.isInteger(warmup) || warmup < 0) {
  console.error('--connections, --duration (seconds) and --users must be whole numbers from 1, --warmup (seconds) from 0')
  process.exit(2)
}
// Someone else's item is needed for the 403s.
if (userCount < 2) {
  console.error('--users must be at least 2')
  process.exit(2)
}

/** A request kind: what it is, and the only statuses it may get. */
interface Kind { name: string, expect: readonly number[] }
const kind = (name: string, ...expect: number[]): Kind => ({ name, expect })
const KINDS = {
  getItem: kind('GET /api/v1/items/{id}', 200),
  getItemNotModified: kind('GET /api/v1/items/{id} If-None-Match', 304),
  getDeletedItem: kind('GET /api/v1/items/{id} deleted', 404),
  getMalformedId: kind('GET /api/v1/items/{id} malformed id', 400),
  listItems: kind('GET /api/v1/items filters', 200),
  listNextPage: kind('GET /api/v1/items next cursor', 200),
  listTamperedCursor: kind('GET /api/v1/items tampered cursor', 400),
  listBadLimit: kind('GET /api/v1/items limit=0', 400),
  getImage: kind('GET /api/v1/items/{id}/image', 200),
  getImageNotModified: kind('GET /api/v1/items/{id}/image If-None-Match', 304),
  getMe: kind('GET /api/v1/users/me', 200),
  getMeBadToken: kind('GET /api/v1/users/me bad token', 401),
  createItem: kind('POST /api/v1/items', 201),
  createReplay: kind('POST /api/v1/items Idempotency-Key replay', 201),
  createInvalid: kind('POST /api/v1/items invalid body', 400),
  createTextPlain: kind('POST /api/v1/items text/plain', 415),
  createNoToken: kind('POST /api/v1/items no token', 401),
  patchItem: kind('PATCH /api/v1/items/{id} If-Match', 200),
  patchStale: kind('PATCH /api/v1/items/{id} stale If-Match', 412),
  patchOthers: kind('PATCH /api/v1/items/{id} another user\'s', 403),
  replaceItem: kind('PUT /api/v1/items/{id} If-Match', 200),
  deleteItem: kind('DELETE /api/v1/items/{id} If-Match', 204),
  deleteOthers: kind('DELETE /api/v1/items/{id} another user\'s', 403),
  uploadImage: kind('PUT /api/v1/items/{id}/image', 200),
  uploadNotImage: kind('PUT /api/v1/items/{id}/image not an image', 415),
  // A user past IMPORT_MAX_ACTIVE_PER_USER imports at once is told to wait: the cap is part of the traffic.
  importItems: kind('POST /api/v1/items/import', 202, 429),
  pollJob: kind('GET /api/v1/jobs/{id}', 200),
  unknownRoute: kind('GET /api/v1/unknown', 404)
} as const

/** Where the run is; an object, so that the workers' loops see it change. */
const clock: { phase: 'warm-up' | 'measured' | 'drain' } = { phase: 'warm-up' }

interface KindStats { latencies: number[], statuses: Map<number, number> }
const measured = new Map<Kind, KindStats>()
/** `kind → status` of every answer a kind did not expect, with the first body. Counted over the whole run. */
const unexpected = new Map<string, { count: number, excerpt: string }>()
const socketErrors = new Map<string, number>()
const timeouts = new Map<string, number>()
const failedChecks = new Map<string, number>()
/** Milliseconds from the 202 of an import started in the measured phase to the poll that saw it succeeded. */
const importTimes: number[] = []
let total = 0

const bump = (counts: Map<string, number>, key: string) => counts.set(key, (counts.get(key) ?? 0) + 1)
const sum = (counts: Iterable<number>) => [...counts].reduce((a, b) => a + b, 0)

interface Answer { status: number, etag: string | undefined, retryAfter: string | undefined, text: string }

/** Sends one request, waits for its whole body, and accounts for it; undefined when it got no answer. */
async function send (of: Kind, request: Dispatcher.RequestOptions): Promise<Answer | undefined> {
  const during = clock.phase
  const started = performance.now()
  total++
  try {
    const res = await pool.request(request)
    const text = await res.body.text()
    const ms = performance.now() - started
    if (!of.expect.includes(res.statusCode)) {
      const key = `${of.name} → ${res.statusCode}`
      const seen = unexpected.get(key)
      if (seen === undefined) unexpected.set(key, { count: 1, excerpt: `${request.method} ${request.path}: ${text.slice(0, 300)}` })
      else seen.count++
    }
    if (during === 'measured') {
      let stats = measured.get(of)
      if (stats === undefined) measured.set(of, stats = { latencies: [], statuses: new Map() })
      stats.latencies.push(ms)
      stats.statuses.set(res.statusCode, (stats.statuses.get(res.statusCode) ?? 0) + 1)
    }
    const { etag, 'retry-after': retryAfter } = res.headers
    return { status: res.statusCode, etag: typeof etag === 'string' ? etag : undefined, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined, text }
  } catch (error) {
    const code = String((error as { code?: unknown }).code ?? (error as Error).message)
    bump(code.includes('TIMEOUT') ? timeouts : socketErrors, `${of.name}: ${code}`)
    return undefined
  }
}

const parse = <T>(answer: Answer): T => JSON.parse(answer.text) as T
const jsonBody = (body: unknown, headers: Record<string, string> = {}) =>
  ({ headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
const pick = <T>(list: readonly T[]): T => {
  const value = list[Math.floor(Math.random() * list.length)]
  if (value === undefined) throw new Error('pick from an empty list')
  return value
}
const price = () => Math.round(Math.random() * 50_000) / 100

function multipart (filename: string, type: string, data: Buffer): { headers: Record<string, string>, body: Buffer } {
  const boundary = `soak-${randomUUID()}`
  return {
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    body: Buffer.concat([
      Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${filename}"\r\ncontent-type: ${type}\r\n\r\n`),
      data,
      Buffer.from(`\r\n--${boundary}--\r\n`)
    ])
  }
}

interface User { id: string, auth: Record<string, string> }
interface ItemRef { id: string, etag: string, ownerId: string }
interface Actor { user: User, owned: ItemRef[] }

/** What the seeding leaves: none of it changes during the run, so every read of it has one right answer. */
interface Seed {
  users: User[]
  items: ItemRef[]
  images: Array<{ id: string, etag: string }>
  tamperedCursor: string
}

const fixtures = {
  png: await readFile(join(projectRoot, 'test', 'fixtures', 'pixel.png')),
  jpeg: await readFile(join(projectRoot, 'test', 'fixtures', 'pixel.jpg'))
}
const imageUpload = () => Math.random() < 0.5 ? multipart('pixel.png', 'image/png', fixtures.png) : multipart('pixel.jpg', 'image/jpeg', fixtures.jpeg)

/** Seeding must succeed as a whole: any answer but the expected one stops the run. */
async function must (of: Kind, request: Dispatcher.RequestOptions): Promise<Answer> {
  const answer = await send(of, request)
  if (answer === undefined || !of.expect.includes(answer.status)) {
    throw new Error(`seeding: ${request.method} ${request.path} answered ${answer?.status ?? 'nothing'}: ${answer?.text.slice(0, 300) ?? ''}`)
  }
  return answer
}

async function seed (): Promise<Seed> {
  const run = Date.now()
  const users = await Promise.all(Array.from({ length: userCount }, async (_, index): Promise<User> => {
    const email = `soak-${run}-${index}@example.com`
    const password = `soak-password-${randomUUID()}`
    const created = await must(kind('POST /api/v1/users', 201), { method: 'POST', path: '/api/v1/users', ...jsonBody({ email, password, fullName: `Soak user ${index}` }) })
    const login = await must(kind('POST /api/v1/auth/token', 200), {
      method: 'POST',
      path: '/api/v1/auth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: email, password }).toString()
    })
    return { id: parse<{ id: string }>(created).id, auth: { authorization: `Bearer ${parse<{ access_token: string }>(login).access_token}` } }
  }))

  const items: ItemRef[] = []
  const images: Seed['images'] = []
  await Promise.all(users.map(async (user) => {
    for (let index = 0; index < SEEDED_ITEMS_PER_USER; index++) {
      const name = `Soak ${pick(ADJECTIVES)} ${pick(NOUNS)} ${index}`
      const created = await must(KINDS.createItem, {
        method: 'POST',
        path: '/api/v1/items',
        ...jsonBody({ name, description: `Seeded for npm run soak: ${name}`, price: price(), tags: ['soak', pick(COLOURS)] }, user.auth)
      })
      const { id } = parse<{ id: string }>(created)
      let etag = created.etag ?? ''
      if (index % IMAGE_EVERY === 0) {
        const upload = imageUpload()
        etag = (await must(KINDS.uploadImage, { method: 'PUT', path: `/api/v1/items/${id}/image`, headers: { ...user.auth, ...upload.headers }, body: upload.body })).etag ?? ''
        images.push({ id, etag: (await must(KINDS.getImage, { method: 'GET', path: `/api/v1/items/${id}/image` })).etag ?? '' })
      }
      items.push({ id, etag, ownerId: user.id })
    }
  }))

  const page = parse<{ nextCursor: string | null }>(await must(KINDS.listItems, { method: 'GET', path: '/api/v1/items?tag=soak&limit=5' }))
  if (page.nextCursor === null) throw new Error('seeding: the seeded items fit on one page')
  // A changed character in the middle changes the signed bytes (the last one may only change padding bits).
  const at = Math.floor(page.nextCursor.length / 2)
  const tamperedCursor = page.nextCursor.slice(0, at) + (page.nextCursor[at] === 'A' ? 'B' : 'A') + page.nextCursor.slice(at + 1)
  return { users, items, images, tamperedCursor }
}

type Scenario = (actor: Actor, seed: Seed) => Promise<unknown>

const readItem: Scenario = (_, { items }) => send(KINDS.getItem, { method: 'GET', path: `/api/v1/items/${pick(items).id}` })

const conditionalRead: Scenario = (_, { items }) => {
  const item = pick(items)
  return send(KINDS.getItemNotModified, { method: 'GET', path: `/api/v1/items/${item.id}`, headers: { 'if-none-match': item.etag } })
}

const readImage: Scenario = (_, { images }) => {
  const image = pick(images)
  return Math.random() < 0.5
    ? send(KINDS.getImage, { method: 'GET', path: `/api/v1/items/${image.id}/image` })
    : send(KINDS.getImageNotModified, { method: 'GET', path: `/api/v1/items/${image.id}/image`, headers: { 'if-none-match': image.etag } })
}

const readMe: Scenario = ({ user }) => send(KINDS.getMe, { method: 'GET', path: '/api/v1/users/me', headers: user.auth })

/** A filtered list, and half the time its next page by cursor (with the same filters, as the contract asks). */
const listItems: Scenario = async (_, { users }) => {
  const query = pick([
    () => `tag=soak&tag=${pick(COLOURS)}&limit=10`,
    () => `q=${pick(NOUNS)}&limit=10`,
    () => `ownerId=${pick(users).id}&sort=price&limit=10`,
    () => 'minPrice=50&maxPrice=400&sort=-price,name&limit=10',
    () => 'limit=20'
  ])()
  const first = await send(KINDS.listItems, { method: 'GET', path: `/api/v1/items?${query}` })
  if (first?.status !== 200 || Math.random() < 0.5) return
  const { nextCursor } = parse<{ nextCursor: string | null }>(first)
  if (nextCursor !== null) await send(KINDS.listNextPage, { method: 'GET', path: `/api/v1/items?${query}&cursor=${encodeURIComponent(nextCursor)}` })
}

async function create (actor: Actor): Promise<ItemRef | undefined> {
  const name = `Soak ${pick(ADJECTIVES)} ${pick(NOUNS)} by traffic`
  // A quarter of the creates are retried with their Idempotency-Key, as a client would after a lost answer.
  const key = Math.random() < 0.25 ? randomUUID() : undefined
  const request = {
    method: 'POST',
    path: '/api/v1/items',
    ...jsonBody({ name, price: price(), tags: ['soak', 'traffic'] }, { ...actor.user.auth, ...(key === undefined ? {} : { 'idempotency-key': key }) })
  } as const
  const created = await send(KINDS.createItem, request)
  if (created?.status !== 201 || created.etag === undefined) return undefined
  const item = { id: parse<{ id: string }>(created).id, etag: created.etag, ownerId: actor.user.id }
  actor.owned.push(item)
  if (key !== undefined) {
    const replay = await send(KINDS.createReplay, request)
    if (replay?.status === 201 && parse<{ id: string }>(replay).id !== item.id) bump(failedChecks, 'Idempotency-Key replay created another item')
  }
  return item
}

/** One of the worker's own items (no other worker touches it, so its ETag is known), created when it has none. */
const owned = async (actor: Actor) => actor.owned.at(-1) ?? await create(actor)

const remove: Scenario = async (actor) => {
  if (actor.owned.length === 0) await create(actor)
  const item = actor.owned.shift()
  if (item === undefined) return
  const deleted = await send(KINDS.deleteItem, { method: 'DELETE', path: `/api/v1/items/${item.id}`, headers: { ...actor.user.auth, 'if-match': item.etag } })
  if (deleted?.status === 204 && Math.random() < 0.5) await send(KINDS.getDeletedItem, { method: 'GET', path: `/api/v1/items/${item.id}` })
}

const createItem: Scenario = async (actor, seed) => actor.owned.length >= OWNED_MAX ? await remove(actor, seed) : await create(actor)

/** A merge patch with the current ETag, and a third of the time the same patch again with the now stale one. */
const patchItem: Scenario = async (actor) => {
  const item = await owned(actor)
  if (item === undefined) return
  const patch = { price: price(), description: Math.random() < 0.5 ? null : 'Patched by npm run soak' }
  const contentType = Math.random() < 0.5 ? 'application/merge-patch+json' : 'application/json'
  const request = (etag: string) => ({
    method: 'PATCH',
    path: `/api/v1/items/${item.id}`,
    headers: { ...actor.user.auth, 'content-type': contentType, 'if-match': etag },
    body: JSON.stringify(patch)
  } as const)
  const stale = item.etag
  const patched = await send(KINDS.patchItem, request(stale))
  if (patched?.status !== 200 || patched.etag === undefined) return
  item.etag = patched.etag
  if (Math.random() < 1 / 3) await send(KINDS.patchStale, request(stale))
}

const replaceItem: Scenario = async (actor) => {
  const item = await owned(actor)
  if (item === undefined) return
  const replaced = await send(KINDS.replaceItem, {
    method: 'PUT',
    path: `/api/v1/items/${item.id}`,
    ...jsonBody({ name: `Soak ${pick(ADJECTIVES)} ${pick(NOUNS)} replaced`, price: price(), tags: ['soak', 'traffic', pick(COLOURS)] }, { ...actor.user.auth, 'if-match': item.etag })
  })
  if (replaced?.status === 200 && replaced.etag !== undefined) item.etag = replaced.etag
}

const uploadImage: Scenario = async (actor) => {
  const item = await owned(actor)
  if (item === undefined) return
  const upload = imageUpload()
  const uploaded = await send(KINDS.uploadImage, {
    method: 'PUT',
    path: `/api/v1/items/${item.id}/image`,
    headers: { ...actor.user.auth, ...upload.headers, 'if-match': item.etag },
    body: upload.body
  })
  if (uploaded?.status === 200 && uploaded.etag !== undefined) item.etag = uploaded.etag
}

interface Job { status: 'queued' | 'running' | 'succeeded' | 'failed', result: { created: number, failed: number } | null, error: string | null }

/** A small CSV or NDJSON file, then its job polled until it ends: it must succeed and create every row. */
const importItems: Scenario = async (actor) => {
  const rows = Array.from({ length: IMPORT_ROWS }, (_, index) => ({ name: `Soak imported ${pick(NOUNS)} ${index}`, price: price(), tags: ['soak', 'imported'] }))
  const file = Math.random() < 0.5
    ? multipart('items.csv', 'text/csv', Buffer.from(['name,description,price,tags', ...rows.map((row) => `${row.name},Imported by npm run soak,${row.price},${row.tags.join('|')}`)].join('\n')))
    : multipart('items.ndjson', 'application/x-ndjson', Buffer.from(rows.map((row) => JSON.stringify(row)).join('\n')))
  const accepted = await send(KINDS.importItems, { method: 'POST', path: '/api/v1/items/import', headers: { ...actor.user.auth, ...file.headers }, body: file.body })
  if (accepted?.status === 429) {
    const { type } = parse<{ type: string }>(accepted)
    if (type !== 'urn:catalog-api:problem:too-many-imports' || accepted.retryAfter === undefined) bump(failedChecks, `import refused without the cap's problem: ${accepted.text.slice(0, 200)}`)
    return
  }
  if (accepted?.status !== 202) return
  const { id } = parse<{ id: string }>(accepted)
  const during = clock.phase
  const acceptedAt = performance.now()
  let wait = IMPORT_POLL_FIRST_MS
  while (performance.now() < acceptedAt + IMPORT_DEADLINE_MS) {
    await sleep(wait)
    wait = Math.min(wait * 2, IMPORT_POLL_MAX_MS)
    const polled = await send(KINDS.pollJob, { method: 'GET', path: `/api/v1/jobs/${id}`, headers: actor.user.auth })
    if (polled?.status !== 200) return
    const job = parse<Job>(polled)
    if (job.status === 'failed') return bump(failedChecks, `import job failed: ${job.error ?? ''}`)
    if (job.status === 'succeeded') {
      if (job.result?.created !== IMPORT_ROWS || job.result.failed !== 0) bump(failedChecks, `import job succeeded with ${JSON.stringify(job.result)}`)
      if (during === 'measured') importTimes.push(performance.now() - acceptedAt)
      return
    }
  }
  bump(failedChecks, `import job not finished within ${IMPORT_DEADLINE_MS / 1000} s`)
}

/** Requests that must be refused, each with its one status. */
const badRequest: Scenario = async (actor, { users, items, tamperedCursor }) => {
  const others = items.filter((item) => item.ownerId !== actor.user.id)
  const requests: Array<() => Promise<unknown>> = [
    () => send(KINDS.createInvalid, { method: 'POST', path: '/api/v1/items', ...jsonBody({ name: '', price: -1, colour: 'red' }, actor.user.auth) }),
    () => send(KINDS.createInvalid, { method: 'POST', path: '/api/v1/items', ...jsonBody({ name: 123, price: '19.99' }, actor.user.auth) }),
    () => send(KINDS.createTextPlain, { method: 'POST', path: '/api/v1/items', headers: { ...actor.user.auth, 'content-type': 'text/plain' }, body: 'a desk' }),
    () => send(KINDS.createNoToken, { method: 'POST', path: '/api/v1/items', ...jsonBody({ name: 'Soak without a token', price: 1 }) }),
    () => send(KINDS.getMeBadToken, { method: 'GET', path: '/api/v1/users/me', headers: { authorization: 'Bearer not.a.token' } }),
    () => send(KINDS.patchOthers, { method: 'PATCH', path: `/api/v1/items/${pick(others).id}`, ...jsonBody({ price: 1 }, actor.user.auth) }),
    () => send(KINDS.deleteOthers, { method: 'DELETE', path: `/api/v1/items/${pick(others).id}`, headers: actor.user.auth }),
    () => send(KINDS.unknownRoute, { method: 'GET', path: `/api/v1/unknown/${randomUUID()}` }),
    () => send(KINDS.getMalformedId, { method: 'GET', path: '/api/v1/items/not-a-uuid' }),
    () => send(KINDS.listTamperedCursor, { method: 'GET', path: `/api/v1/items?tag=soak&limit=5&cursor=${encodeURIComponent(tamperedCursor)}` }),
    () => send(KINDS.listBadLimit, { method: 'GET', path: `/api/v1/items?ownerId=${pick(users).id}&limit=0` }),
    async () => {
      const item = await owned(actor)
      if (item === undefined) return
      const upload = multipart('items.csv', 'image/png', Buffer.from('name,price\nNot an image,1\n'))
      await send(KINDS.uploadNotImage, { method: 'PUT', path: `/api/v1/items/${item.id}/image`, headers: { ...actor.user.auth, ...upload.headers }, body: upload.body })
    }
  ]
  await pick(requests)()
}

/** Roughly an API's mix: mostly reads, a sixth writes, a few uploads and imports, and some clients getting it wrong. */
const SCENARIOS: Array<[weight: number, Scenario]> = [
  [24, readItem],
  [18, listItems],
  [8, readMe],
  [6, conditionalRead],
  [4, readImage],
  [6, createItem],
  [6, patchItem],
  [2, replaceItem],
  [4, remove],
  [2, uploadImage],
  [1, importItems],
  [8, badRequest]
]
const totalWeight = sum(SCENARIOS.map(([weight]) => weight))

function scenario (): Scenario {
  let draw = Math.random() * totalWeight
  for (const [weight, run] of SCENARIOS) {
    draw -= weight
    if (draw < 0) return run
  }
  return readItem
}

async function work (actor: Actor, seeded: Seed): Promise<void> {
  while (clock.phase !== 'drain') {
    try {
      await scenario()(actor, seeded)
    } catch (error) {
      bump(failedChecks, `scenario threw: ${(error as Error).message}`)
    }
  }
}

const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MB`
const ms = (value: number) => value.toFixed(1).padStart(8)

/** Server lines at error level or worse, by message: what to look at when 5xx appear. */
async function serverErrors (logFile: string): Promise<Map<string, number>> {
  const errors = new Map<string, number>()
  for (const line of (await readFile(logFile, 'utf8')).split('\n')) {
    let entry: { level?: number, msg?: string, err?: { message?: string } }
    try {
      entry = JSON.parse(line) as typeof entry
    } catch {
      continue
    }
    if ((entry.level ?? 0) >= 50) bump(errors, `${entry.msg ?? ''}${entry.err?.message === undefined ? '' : `: ${entry.err.message}`}`.slice(0, 200))
  }
  return errors
}

let server: ServerProcess | undefined
let rss: () => Promise<number>
let target: string
const soakUrl = process.env.SOAK_URL
if (soakUrl !== undefined && soakUrl !== '') {
  target = soakUrl
  // Not our child: its memory is what it reports itself.
  rss = async () => {
    const metrics = await (await fetch(new URL('/metrics', soakUrl))).text()
    return Number(/^process_resident_memory_bytes (\S+)$/m.exec(metrics)?.[1] ?? Number.NaN)
  }
} else {
  const databaseUrl = requireDatabaseUrl('npm run soak', 'catalog_soak')
  // Tokens outlive any run; the limits are raised by startServer.
  server = await startServer({ ACCESS_TOKEN_TTL: '1d' })
  target = server.origin
  rss = server.rss
  console.log(`server: pid ${server.pid} (tsx src/server.ts) at ${server.origin} on ${new URL(databaseUrl).host}${new URL(databaseUrl).pathname}, log ${server.logFile}`)
}
const pool = new Pool(target, { connections, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS })

let failed = false
try {
  const seeded = await seed()
  // Seeding's requests are not part of the run (and any unexpected answer to them has stopped it).
  total = 0
  console.log(`seeded: ${seeded.users.length} users, ${seeded.items.length} items (${seeded.images.length} with images); ` +
    `${connections} connections, ${warmup} s warm-up, then ${duration} s measured`)

  const actors = Array.from({ length: connections }, (_, index): Actor => ({ user: seeded.users[index % seeded.users.length] as User, owned: [] }))
  const samples: Array<{ at: number, bytes: number }> = []
  const sample = async () => { samples.push({ at: performance.now(), bytes: await rss() }) }
  const recentRss = async () => {
    await sample()
    const since = performance.now() - RSS_WINDOW_MS
    const recent = samples.filter(({ at }) => at >= since).map(({ bytes }) => bytes).sort((a, b) => a - b)
    return recent[Math.floor(recent.length / 2)] ?? Number.NaN
  }
  const sampler = setInterval(() => { sample().catch(() => {}) }, 1000)

  const workers = actors.map((actor) => work(actor, seeded))
  await sleep(warmup * 1000)
  const warmRequests = total
  const rssWarm = await recentRss()
  console.log(`warm-up: ${warmRequests} requests; server RSS ${mb(rssWarm)}`)
  clock.phase = 'measured'
  const started = performance.now()
  await sleep(duration * 1000)
  const rssEnd = await recentRss()
  const elapsed = (performance.now() - started) / 1000
  clock.phase = 'drain'
  clearInterval(sampler)
  const rssPeak = Math.max(...samples.filter(({ at }) => at >= started).map(({ bytes }) => bytes))
  await Promise.all(workers)

  const rows = Object.values(KINDS).filter((of) => measured.has(of))
  const requests = sum(rows.map((of) => measured.get(of)?.latencies.length ?? 0))
  console.log(`\n${'request kind'.padEnd(52)} ${'requests'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}  statuses`)
  for (const of of rows) {
    const stats = measured.get(of)
    if (stats === undefined) continue
    const sorted = stats.latencies.sort((a, b) => a - b)
    const statuses = [...stats.statuses].sort(([a], [b]) => a - b).map(([status, count]) => `${status}×${count}`).join(' ')
    console.log(`${of.name.padEnd(52)} ${String(sorted.length).padStart(8)} ${ms(percentile(sorted, 0.5))} ${ms(percentile(sorted, 0.99))}  ${statuses}`)
  }
  const everything = rows.flatMap((of) => measured.get(of)?.latencies ?? []).sort((a, b) => a - b)
  console.log(`${'all'.padEnd(52)} ${String(requests).padStart(8)} ${ms(percentile(everything, 0.5))} ${ms(percentile(everything, 0.99))}`)

  const serverFaults = [...unexpected].filter(([key]) => / → 5\d\d$/.test(key))
  const unexpectedCount = sum([...unexpected.values()].map(({ count }) => count))
  const growth = (rssEnd - rssWarm) / rssWarm
  console.log(`\nmeasured: ${requests} requests in ${elapsed.toFixed(1)} s = ${(requests / elapsed).toFixed(0)} req/s; ` +
    `whole run (warm-up and drain included): ${total} requests`)
  const importsSorted = importTimes.sort((a, b) => a - b)
  console.log(`imports started in the measured phase: ${importsSorted.length} succeeded, ` +
    `${(percentile(importsSorted, 0.5) / 1000).toFixed(1)} s p50, ${(percentile(importsSorted, 0.99) / 1000).toFixed(1)} s p99 from their 202 (polled, to within a second)`)
  console.log('errors over the whole run:')
  console.log(`  socket errors ${sum(socketErrors.values())}, timeouts ${sum(timeouts.values())}, ` +
    `5xx ${sum(serverFaults.map(([, { count }]) => count))}, unexpected statuses ${unexpectedCount} (5xx included), failed checks ${sum(failedChecks.values())}`)
  for (const [key, count] of [...socketErrors, ...timeouts]) console.log(`  ${key}: ${count}`)
  for (const [key, { count, excerpt }] of [...unexpected].sort(([, a], [, b]) => b.count - a.count)) console.log(`  ${key}: ${count}\n      first: ${excerpt}`)
  for (const [key, count] of failedChecks) console.log(`  ${key}: ${count}`)
  if (server !== undefined) {
    const logged = await serverErrors(server.logFile)
    if (logged.size > 0) console.log(`server log errors (${server.logFile}):`)
    for (const [message, count] of logged) console.log(`  ${message}: ${count}`)
  }
  console.log(`server RSS (medians of ${RSS_WINDOW_MS / 1000} s): ${mb(rssWarm)} after warm-up, ${mb(rssEnd)} at the end (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)}%), peak ${mb(rssPeak)}`)

  const targets: Array<[string, boolean]> = [
    ['no socket errors or timeouts', socketErrors.size === 0 && timeouts.size === 0],
    ['no unexpected statuses', unexpectedCount === 0],
    ['no failed checks', failedChecks.size === 0],
    [`RSS grew by at most ${RSS_GROWTH_LIMIT * 100}%`, growth <= RSS_GROWTH_LIMIT]
  ]
  failed = targets.some(([, met]) => !met)
  console.log(`targets: ${targets.map(([name, met]) => `${name} ${met ? 'ok' : 'FAILED'}`).join('; ')}`)
} catch (error) {
  console.error(error)
  failed = true
} finally {
  await pool.close()
  await server?.stop()
}
if (failed) process.exitCode = 1

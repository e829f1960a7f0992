import { eq } from 'drizzle-orm'
import t from 'tap'
import type { Job } from '../../schemas/jobs.js'
import { files, jobs } from '../../src/db/schema.js'
import { authHeader, build, login, signUp } from '../helper.js'
import { finished, itemsOf, multipart, ndjson, postImport, startImport, user } from './helpers.js'

const ROOT = { FIRST_SUPERUSER_EMAIL: 'root@example.com', FIRST_SUPERUSER_PASSWORD: 'root-password-123', UPLOAD_MAX_BYTES: '4096' }
const app = await build(t, ROOT)

t.test('POST /api/v1/items/import → 202 with the queued Job, Location and ETag; the file and the job are stored', async (t) => {
  const ada = await user(app)
  const content = ndjson([{ name: 'Desk', price: 10 }])
  const res = await postImport(app, ada.token, { filename: 'items.ndjson', content })
  t.equal(res.statusCode, 202)
  const job = res.json<Job>()
  t.match(job, { kind: 'items.import', status: 'queued', progress: 0, result: null, error: null, finishedAt: null })
  t.match(job.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7/)
  t.equal(res.headers.location, `/api/v1/jobs/${job.id}`)
  t.match(res.headers.etag, /^"[^"]+"$/)
  const [row] = await app.db.select().from(jobs).where(eq(jobs.id, job.id))
  t.equal(row?.ownerId, ada.id)
  const [file] = await app.db.select().from(files).where(eq(files.id, row?.inputFileId ?? ''))
  t.match(file, { ownerId: ada.id, contentType: 'application/x-ndjson', size: Buffer.byteLength(content) })
  t.equal(Buffer.from(file?.data ?? []).toString(), content)
  t.match(file?.sha256, /^[0-9a-f]{64}$/)
  t.equal((await finished(app, ada.token, job.id)).status, 'succeeded')
})

t.test('POST /api/v1/items/import → NDJSON: valid rows become the user\'s items, bad rows are listed by line', async (t) => {
  const ada = await user(app)
  const content = [
    JSON.stringify({ name: 'Walnut desk', description: 'Solid walnut', price: 19.99, tags: ['furniture', 'walnut'] }),
    '',
    JSON.stringify({ name: '', price: -1 }),
    '{ not json',
    '   ',
    JSON.stringify({ name: 'Lamp', price: 1.15 }),
    JSON.stringify({ name: 'Chair', price: 10.005, colour: 'red' }),
    JSON.stringify({ name: 'Big', price: 1_000_000_000 }),
    JSON.stringify({ name: 'Nul\u0000', price: 1 }),
    '7'
  ].join('\r\n')
  const job = await finished(app, ada.token, (await startImport(app, ada.token, { filename: 'rows.ndjson', content })).id)
  t.match(job, { status: 'succeeded', progress: 1, error: null })
  t.ok(job.finishedAt)
  t.same(job.result, {
    created: 3,
    failed: 5,
    errors: [
      { line: 3, errors: [{ path: '/name', message: 'must NOT have fewer than 1 characters' }, { path: '/price', message: 'must be >= 0' }] },
      { line: 4, errors: [{ path: '', message: 'is not valid JSON' }] },
      { line: 7, errors: [{ path: '/colour', message: 'is not a known field' }, { path: '/price', message: 'must have at most 2 decimals' }] },
      { line: 9, errors: [{ path: '/name', message: 'must not contain NUL characters' }] },
      { line: 10, errors: [{ path: '', message: 'must be object' }] }
    ]
  })
  t.same(await itemsOf(app, ada.id), [
    { name: 'Walnut desk', description: 'Solid walnut', price: '19.99', tags: ['furniture', 'walnut'] },
    { name: 'Lamp', description: null, price: '1.15', tags: [] },
    { name: 'Big', description: null, price: '1000000000.00', tags: [] }
  ])
})

t.test('POST /api/v1/items/import → CSV with quoting, commas, line breaks, | tags and empty descriptions', async (t) => {
  const ada = await user(app)
  const content = [
    'name,description,price,tags',
    '"Desk, walnut","Says ""solid""",19.99,furniture|walnut',
    'Lamp,,5,',
    '"Two',
    'lines",multi,0.1,a',
    '',
    'Bad price,x,abc,',
    'Too few,x',
    'Dup tags,x,1,a|a',
    'Empty tag,x,1,a||b'
  ].join('\n')
  const job = await finished(app, ada.token, (await startImport(app, ada.token, { filename: 'items.CSV', content })).id)
  t.equal(job.status, 'succeeded')
  t.same(job.result, {
    created: 3,
    failed: 4,
    errors: [
      { line: 7, errors: [{ path: '/price', message: 'must be number' }] },
      { line: 8, errors: [{ path: '', message: 'must have 4 fields (name,description,price,tags), not 2' }] },
      { line: 9, errors: [{ path: '/tags', message: 'must NOT have duplicate items (items ## 1 and 0 are identical)' }] },
      { line: 10, errors: [{ path: '/tags/1', message: 'must NOT have fewer than 1 characters' }] }
    ]
  })
  t.same(await itemsOf(app, ada.id), [
    { name: 'Desk, walnut', description: 'Says "solid"', price: '19.99', tags: ['furniture', 'walnut'] },
    { name: 'Lamp', description: null, price: '5.00', tags: [] },
    { name: 'Two\nlines', description: 'multi', price: '0.10', tags: ['a'] }
  ])
})

t.test('POST /api/v1/items/import → the format comes from the declared type when the name says nothing', async (t) => {
  const ada = await user(app)
  const job = await startImport(app, ada.token, { filename: 'upload', type: 'text/csv; charset=utf-8', content: 'name,description,price,tags\nA,,1,\n' })
  t.match(await finished(app, ada.token, job.id), { status: 'succeeded', result: { created: 1, failed: 0 } })
})

t.test('POST /api/v1/items/import → an empty NDJSON file succeeds with nothing created', async (t) => {
  const ada = await user(app)
  const job = await startImport(app, ada.token, { filename: 'empty.ndjson', content: '' })
  t.match(await finished(app, ada.token, job.id), { status: 'succeeded', progress: 1, result: { created: 0, failed: 0, errors: [] } })
})

t.test('the job fails, with its reason, when the file itself cannot be read', async (t) => {
  const ada = await user(app)
  const cases: Array<[string, { filename: string, content: string | Buffer }, RegExp]> = [
    ['a wrong CSV header', { filename: 'a.csv', content: 'name,price,description,tags\nA,1,,\n' }, /header row must be exactly name,description,price,tags/],
    ['no CSV header', { filename: 'a.csv', content: '' }, /header row must be exactly/],
    ['an unclosed CSV quote', { filename: 'a.csv', content: 'name,description,price,tags\n"A,,1,\n' }, /CSV file is malformed: Quote Not Closed/],
    ['bytes that are not UTF-8', { filename: 'a.ndjson', content: Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a]) }, /not valid UTF-8/]
  ]
  for (const [name, file, error] of cases) {
    const job = await finished(app, ada.token, (await startImport(app, ada.token, file)).id)
    t.equal(job.status, 'failed', name)
    t.match(job.error, error, name)
    t.ok(job.finishedAt, name)
  }
  t.same(await itemsOf(app, ada.id), [])
})

t.test('POST /api/v1/items/import → 415 for a file that is neither NDJSON nor CSV, and for a body that is not multipart', async (t) => {
  const ada = await user(app)
  const wrong = await postImport(app, ada.token, { filename: 'items.json', type: 'application/json', content: '[]' })
  t.equal(wrong.statusCode, 415)
  t.equal(wrong.headers['content-type'], 'application/problem+json')
  const json = await app.inject({ method: 'POST', url: '/api/v1/items/import', payload: { file: 'x' }, headers: authHeader(ada.token) })
  t.equal(json.statusCode, 415)
  t.equal(json.json().status, 415)
})

t.test('POST /api/v1/items/import → 413 past UPLOAD_MAX_BYTES', async (t) => {
  const ada = await user(app)
  const res = await postImport(app, ada.token, { filename: 'big.ndjson', content: 'x'.repeat(5000) })
  t.equal(res.statusCode, 413)
  t.match(res.json(), { status: 413, detail: /4096 bytes/ })
})

t.test('POST /api/v1/items/import → 400 without a file part, or with another part', async (t) => {
  const ada = await user(app)
  const none = multipart([])
  const empty = await app.inject({ method: 'POST', url: '/api/v1/items/import', payload: none.payload, headers: { ...none.headers, ...authHeader(ada.token) } })
  t.equal(empty.statusCode, 400)
  t.match(empty.json(), { errors: [{ in: 'body', path: '/file', message: 'is required' }] })

  const other = multipart([{ name: 'upload', filename: 'a.ndjson', content: '{}' }])
  const res = await app.inject({ method: 'POST', url: '/api/v1/items/import', payload: other.payload, headers: { ...other.headers, ...authHeader(ada.token) } })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { errors: [{ in: 'body', path: '/upload' }] })

  const broken = await app.inject({
    method: 'POST',
    url: '/api/v1/items/import',
    payload: 'not really multipart',
    headers: { 'content-type': 'multipart/form-data; boundary=nope', ...authHeader(ada.token) }
  })
  t.equal(broken.statusCode, 400)
})

t.test('POST /api/v1/items/import → 401 without a token, 403 without items:write', async (t) => {
  const anonymous = await postImport(app, undefined, { filename: 'a.ndjson', content: '{}' })
  t.equal(anonymous.statusCode, 401)
  t.match(anonymous.headers['www-authenticate'], /^Bearer/)
  const created = await signUp(app)
  const profileOnly = await login(app, created.email, undefined, 'profile')
  const res = await postImport(app, profileOnly, { filename: 'a.ndjson', content: '{}' })
  t.equal(res.statusCode, 403)
  t.match(res.headers['www-authenticate'], /insufficient_scope/)
})

t.test('GET /api/v1/jobs/{id} → the creator and an admin may read it; another user 403; unknown 404; malformed 400', async (t) => {
  const ada = await user(app)
  const bob = await user(app)
  const job = await startImport(app, ada.token, { filename: 'a.ndjson', content: ndjson([{ name: 'A', price: 1 }]) })
  const done = await finished(app, ada.token, job.id)

  const other = await app.inject({ url: `/api/v1/jobs/${job.id}`, headers: authHeader(bob.token) })
  t.equal(other.statusCode, 403)
  t.equal(other.json().status, 403)

  const admin = await login(app, ROOT.FIRST_SUPERUSER_EMAIL, ROOT.FIRST_SUPERUSER_PASSWORD, 'admin')
  const byAdmin = await app.inject({ url: `/api/v1/jobs/${job.id}`, headers: authHeader(admin) })
  t.equal(byAdmin.statusCode, 200)
  t.same(byAdmin.json(), done)

  const unknown = await app.inject({ url: '/api/v1/jobs/0196f1c2-7a8b-7cde-8f01-23456789abcd', headers: authHeader(ada.token) })
  t.equal(unknown.statusCode, 404)
  const malformed = await app.inject({ url: '/api/v1/jobs/not-a-uuid', headers: authHeader(ada.token) })
  t.equal(malformed.statusCode, 400)
  t.match(malformed.json(), { errors: [{ in: 'path', path: '/id' }] })
  t.equal((await app.inject({ url: `/api/v1/jobs/${job.id}` })).statusCode, 401)
})

t.test('GET /api/v1/jobs/{id} → ETag, and 304 for a matching If-None-Match', async (t) => {
  const ada = await user(app)
  const job = await startImport(app, ada.token, { filename: 'a.ndjson', content: ndjson([{ name: 'A', price: 1 }]) })
  await finished(app, ada.token, job.id)
  const res = await app.inject({ url: `/api/v1/jobs/${job.id}`, headers: authHeader(ada.token) })
  const etag = res.headers.etag as string
  t.match(etag, /^"[^"]+"$/)
  t.not(etag, (await postImport(app, ada.token, { filename: 'b.ndjson', content: '' })).headers.etag)
  const again = await app.inject({ url: `/api/v1/jobs/${job.id}`, headers: { ...authHeader(ada.token), 'if-none-match': `W/${etag}` } })
  t.equal(again.statusCode, 304)
  t.equal(again.body, '')
  const changed = await app.inject({ url: `/api/v1/jobs/${job.id}`, headers: { ...authHeader(ada.token), 'if-none-match': '"other"' } })
  t.equal(changed.statusCode, 200)
})

t.test('POST /api/v1/items/import → an Idempotency-Key replays the first answer for the same file, and refuses another file', async (t) => {
  const ada = await user(app)
  const key = { 'idempotency-key': `import-${ada.id}` }
  const file = { filename: 'a.ndjson', content: ndjson([{ name: 'Once', price: 1 }]) }
  const first = await postImport(app, ada.token, file, key)
  t.equal(first.statusCode, 202)
  const second = await postImport(app, ada.token, file, key)
  t.equal(second.statusCode, 202)
  t.equal(second.json<Job>().id, first.json<Job>().id)
  t.equal(second.headers.location, first.headers.location)
  const other = await postImport(app, ada.token, { ...file, content: ndjson([{ name: 'Twice', price: 2 }]) }, key)
  t.equal(other.statusCode, 422)
  await finished(app, ada.token, first.json<Job>().id)
  t.equal((await itemsOf(app, ada.id)).length, 1)
})

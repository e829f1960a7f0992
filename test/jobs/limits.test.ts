import { count, eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { Job } from '../../schemas/jobs.js'
import { files, jobs } from '../../src/db/schema.js'
import { runImport } from '../../src/jobs/import.js'
import { build } from '../helper.js'
import { finished, itemsOf, ndjson, postImport, startImport, user } from './helpers.js'

const rowsOf = (n: number, prefix: string) => Array.from({ length: n }, (_, row) => ({ name: `${prefix} ${row}`, price: row % 100 }))

const countOf = async (app: FastifyInstance, ownerId: string) => ({
  jobs: Number((await app.db.select({ n: count() }).from(jobs).where(eq(jobs.ownerId, ownerId)))[0]?.n),
  files: Number((await app.db.select({ n: count() }).from(files).where(eq(files.ownerId, ownerId)))[0]?.n)
})

t.test('POST /api/v1/items/import → 429 problem with Retry-After past IMPORT_MAX_ACTIVE_PER_USER; nothing stored; others unaffected', async (t) => {
  const app = await build(t, { IMPORT_MAX_ACTIVE_PER_USER: '2' }, { jobs: { worker: false } })
  const ada = await user(app)
  const bob = await user(app)
  const file = { filename: 'a.ndjson', content: ndjson([{ name: 'A', price: 1 }]) }
  const first = await startImport(app, ada.token, file)
  await startImport(app, ada.token, file)
  const before = await countOf(app, ada.id)

  const refused = await postImport(app, ada.token, file)
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['content-type'], 'application/problem+json')
  t.match(refused.headers['retry-after'], /^[1-9][0-9]*$/)
  t.match(refused.json(), { type: 'urn:catalog-api:problem:too-many-imports', status: 429, detail: /2 imports queued or running/, instance: '/api/v1/items/import' })
  t.same(await countOf(app, ada.id), before, 'no job or file stored')
  t.same(before, { jobs: 2, files: 2 })

  t.equal((await postImport(app, bob.token, file)).statusCode, 202, 'the cap is per user')

  // Once one has finished, there is room again; an Idempotency-Key refused with 429 is not replayed.
  const key = { 'idempotency-key': `cap-${ada.id}` }
  t.equal((await postImport(app, ada.token, file, key)).statusCode, 429)
  await runImport(app.db, first.id, { batchSize: 10 })
  t.equal((await postImport(app, ada.token, file, key)).statusCode, 202)
})

t.test('POST /api/v1/items/import → parallel requests of one user never pass the cap', async (t) => {
  const app = await build(t, { IMPORT_MAX_ACTIVE_PER_USER: '3' }, { jobs: { worker: false } })
  const ada = await user(app)
  const file = { filename: 'a.ndjson', content: ndjson([{ name: 'A', price: 1 }]) }
  const answers = await Promise.all(Array.from({ length: 12 }, () => postImport(app, ada.token, file)))
  t.same(answers.map((res) => res.statusCode).sort(), [...Array<number>(3).fill(202), ...Array<number>(9).fill(429)])
  t.same(await countOf(app, ada.id), { jobs: 3, files: 3 })
})

t.test('imports take turns: a user\'s one import finishes before the last of another user\'s queued imports', async (t) => {
  let release: () => void = () => undefined
  const allQueued = new Promise<void>((resolve) => { release = resolve })
  const app = await build(t, {}, { jobs: { batchSize: 5, turnBatches: 1, afterBatch: async () => { await allQueued } } })
  const ada = await user(app)
  const bob = await user(app)
  const adas: Job[] = []
  for (let n = 0; n < 3; n++) adas.push(await startImport(app, ada.token, { filename: 'a.ndjson', content: ndjson(rowsOf(40, `Ada ${n}`)) }))
  const bobs = await startImport(app, bob.token, { filename: 'b.ndjson', content: ndjson(rowsOf(5, 'Bob')) })
  release()

  const bobDone = await finished(app, bob.token, bobs.id)
  const adaDone = await Promise.all(adas.map((job) => finished(app, ada.token, job.id)))
  t.match(bobDone, { status: 'succeeded', result: { created: 5 } })
  for (const job of adaDone) t.match(job, { status: 'succeeded', progress: 1, result: { created: 40, failed: 0 } })
  const last = Math.max(...adaDone.map((job) => Date.parse(job.finishedAt ?? '')))
  t.ok(Date.parse(bobDone.finishedAt ?? '') < last, 'Bob\'s import finished before Ada\'s last one')
  // Taking turns neither repeats nor loses a row.
  t.same((await itemsOf(app, ada.id)).map((item) => item.name).sort(), adas.flatMap((_, n) => rowsOf(40, `Ada ${n}`).map((row) => row.name)).sort())
})

t.test('an import gives the event loop turns: a request is answered while it runs', async (t) => {
  const app = await build(t, {}, { jobs: { worker: false } })
  const ada = await user(app)
  const job = await startImport(app, ada.token, { filename: 'a.ndjson', content: ndjson(rowsOf(2000, 'Row')) })
  let running = true
  const run = runImport(app.db, job.id, { batchSize: 50 }).finally(() => { running = false })
  const live = await app.inject({ url: '/health/live' })
  t.equal(live.statusCode, 200)
  t.ok(running, '/health/live answered before the import finished')
  await run
  t.match(await finished(app, ada.token, job.id), { status: 'succeeded', result: { created: 2000 } })
})

t.test('reading a CSV file gives the event loop turns before its first batch', async (t) => {
  let turned = false
  let turnedBeforeFirstBatch: boolean | undefined
  const app = await build(t, {}, { jobs: { worker: false } })
  const ada = await user(app)
  const content = ['name,description,price,tags', ...rowsOf(3000, 'Row').map((row) => `${row.name},"a, b",${row.price},x|y`)].join('\n')
  const job = await startImport(app, ada.token, { filename: 'a.csv', content })
  setImmediate(() => { turned = true })
  await runImport(app.db, job.id, { batchSize: 1000, afterBatch: () => { turnedBeforeFirstBatch ??= turned } })
  t.equal(turnedBeforeFirstBatch, true)
  t.match(await finished(app, ada.token, job.id), { status: 'succeeded', result: { created: 3000, failed: 0 } })
})

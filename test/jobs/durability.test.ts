import { eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { jobs } from '../../src/db/schema.js'
import { ImportInterruptedError, runImport } from '../../src/jobs/import.js'
import { build, restartable } from '../helper.js'
import { finished, itemsOf, ndjson, startImport, user } from './helpers.js'

const jobRow = async (app: FastifyInstance, id: string) => {
  const [row] = await app.db.select().from(jobs).where(eq(jobs.id, id))
  return row
}

const ROWS = [
  { name: 'One', price: 1 },
  { name: 'Two', price: 2 },
  { name: 'Three', price: 3 },
  { name: 'Bad', price: 'four' },
  { name: 'Five', price: 5 },
  { name: 'Six', price: 6.5 },
  { name: 'Seven', price: 7.25 }
]
const CREATED = ['One', 'Two', 'Three', 'Five', 'Six', 'Seven']
const RESULT = { created: 6, failed: 1, errors: [{ line: 4, errors: [{ path: '/price', message: 'must be number' }] }] }

t.test('an import accepted by an instance that stops before working on it is run once by the next instance', async (t) => {
  const start = await restartable(t)
  const first = await start({ jobs: { worker: false } })
  const ada = await user(first.app)
  const job = await startImport(first.app, ada.token, { filename: 'rows.ndjson', content: ndjson(ROWS) })
  await first.stop()

  const second = await start({ jobs: { batchSize: 2 } })
  const done = await finished(second.app, ada.token, job.id)
  t.match(done, { status: 'succeeded', progress: 1, result: RESULT })
  t.same((await itemsOf(second.app, ada.id)).map((item) => item.name), CREATED)
})

t.test('an import interrupted by a shutdown between batches resumes on the next instance without duplicates', async (t) => {
  const start = await restartable(t)
  let firstBatch: () => void = () => undefined
  const committed = new Promise<void>((resolve) => { firstBatch = resolve })
  let release: () => void = () => undefined
  const parked = new Promise<void>((resolve) => { release = resolve })
  const first = await start({
    jobs: {
      batchSize: 2,
      afterBatch: async () => {
        firstBatch()
        await parked
      }
    }
  })
  const ada = await user(first.app)
  const job = await startImport(first.app, ada.token, { filename: 'rows.ndjson', content: ndjson(ROWS) })
  await committed
  // Stopping aborts the run, which ends after the batch it has committed.
  const stopping = first.app.jobQueue.stop()
  release()
  await stopping
  t.match(await jobRow(first.app, job.id), { status: 'running', processed: 2, result: { created: 2, failed: 0 } })
  t.equal((await itemsOf(first.app, ada.id)).length, 2)
  await first.stop()

  const second = await start({ jobs: { batchSize: 2 } })
  const done = await finished(second.app, ada.token, job.id)
  t.match(done, { status: 'succeeded', progress: 1, result: RESULT })
  t.same((await itemsOf(second.app, ada.id)).map((item) => item.name), CREATED)
  t.match(await jobRow(second.app, job.id), { processed: ROWS.length })
})

t.test('a run resumes after the last committed batch; concurrent and repeated runs create each item once', async (t) => {
  const app = await build(t, {}, { jobs: { worker: false } })
  const ada = await user(app)
  const job = await startImport(app, ada.token, { filename: 'rows.ndjson', content: ndjson(ROWS) })

  const interrupt = new AbortController()
  await t.rejects(runImport(app.db, job.id, { batchSize: 3, signal: interrupt.signal, afterBatch: () => { interrupt.abort() } }), ImportInterruptedError)
  t.match(await jobRow(app, job.id), { status: 'running', processed: 3, progress: 3 / 7, finishedAt: null })
  t.same((await itemsOf(app, ada.id)).map((item) => item.name), ['One', 'Two', 'Three'])

  await Promise.all([runImport(app.db, job.id, { batchSize: 1 }), runImport(app.db, job.id, { batchSize: 1 })])
  const done = await jobRow(app, job.id)
  t.match(done, { status: 'succeeded', processed: 7, progress: 1, result: RESULT })
  t.same((await itemsOf(app, ada.id)).map((item) => item.name), CREATED)

  await runImport(app.db, job.id, { batchSize: 1 })
  t.same(await jobRow(app, job.id), done, 'a finished job is left as it is')
  t.equal((await itemsOf(app, ada.id)).length, CREATED.length)
})

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import PgBoss from 'pg-boss'
import { sql, type SQL } from 'drizzle-orm'
import { rows, type Executor, type RawResult } from '../db/client.js'
import { finish, ImportInterruptedError, runImport, type ImportRunOptions } from './import.js'

const IMPORT_QUEUE = 'items.import'
/** pg-boss keeps its tables in this schema, which it creates and migrates itself, outside our drizzle migrations. */
const QUEUE_SCHEMA = 'pgboss'

export interface JobsOptions {
  /** Whether this instance works on imports (default true); without, it only accepts them. */
  worker?: boolean
  /** Rows per transaction (default 100 on PGlite, 1,000 on Postgres). */
  batchSize?: number
  /** Batches an import runs before it gives way to the imports queued behind it (default 20). */
  turnBatches?: number
  /** Called after each committed batch (tests pause or interrupt imports here). */
  afterBatch?: ImportRunOptions['afterBatch']
}

/**
 * How a queue's jobs are worked on, per instance: `workers` each fetch up to `batchSize` jobs and take the next batch
 * once all of theirs are done, so a slow job holds up only its own worker's batch (default 1 and 1).
 */
export interface QueueOptions {
  workers?: number
  batchSize?: number
  /** How often an idle worker looks for jobs another instance queued or whose time has come (default 0.5 s). */
  pollingIntervalSeconds?: number
}

/** Works on the jobs of one queue, fetched together; a job whose work throws is retried as its options say. */
export type QueueWorker<T extends object> = (jobs: Array<PgBoss.JobWithMetadata<T>>) => Promise<void>

export interface JobQueue {
  /**
   * Declares a queue and the work on its jobs, which this instance does unless it only accepts jobs (`worker: false`).
   * Called while the app is being built: the queue is created, and its worker started, when the app is ready.
   */
  define <T extends object>(name: string, work: QueueWorker<T>, options?: QueueOptions): void
  /**
   * Enqueues a job, within the transaction `tx` when given (the job then exists if and only if it commits), or now.
   * Its options say when it runs (`startAfter`), how it is retried and how long it may run.
   */
  send (tx: Executor | undefined, name: string, data: object, options?: PgBoss.SendOptions): Promise<void>
  /** Enqueues an import within the caller's transaction: the job row and its queue entry commit together. */
  enqueueImport (tx: Executor, jobId: string): Promise<void>
  /** Wakes this instance's workers of `queue` (of imports by default) at once rather than at their next poll (call it after the commit). */
  wake (queue?: string): void
  /** Stops working: an import in progress stops after its batch, to be resumed by the next worker. Closing the app does this too. */
  stop (): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    jobQueue: JobQueue
  }
}

/**
 * Retries cover crashes, shutdowns mid-import and database outages, with a growing, jittered delay (1–2 s, 2–4 s, …;
 * 17 to 34 min in all).
 * A worker that dies holding a job leaves it active until it expires, after which another worker takes it.
 */
const RETRIES = { retryLimit: 10, retryDelay: 1, retryBackoff: true, expireInSeconds: 15 * 60 }
/**
 * Rows per batch, which is one transaction. PGlite runs its statements inside this process, holding the event loop
 * (about 0.3 ms a row): its batches stay small, so a request waits for one batch at most. On Postgres, larger batches
 * spread the per-batch statements (the job row's lock and update, its event) over more rows.
 */
const BATCH_SIZE = { pglite: 100, postgres: 1000 } as const
const TURN_BATCHES = 20
// Within the server's shutdown grace period; an import still running then is failed over to a retry.
const STOP_TIMEOUT_MS = 5_000

/** `$1`-style SQL text and values as a drizzle query, so pg-boss can write through one of our transactions. */
function boundSql (text: string, values: unknown[]): SQL {
  const query = sql.empty()
  text.split(/\$([0-9]+)/).forEach((chunk, index) => {
    // Odd chunks are the numbers of the placeholders.
    query.append(index % 2 === 0 ? sql.raw(chunk) : sql`${sql.param(values[Number(chunk) - 1])}`)
  })
  return query
}

const transactionDb = (tx: Executor): PgBoss.Db => ({
  executeSql: async (text, values) => ({ rows: await rows(tx, boundSql(text, values)) })
})

/**
 * The durable queue of item imports: pg-boss 10 over our own database connection, PGlite or the
 * Postgres pool (PGlite serializes pg-boss's statements with ours, and an open transaction makes them
 * wait, never interleave). Our `jobs` table stays the record clients read; pg-boss only schedules work.
 */
export default fp(async function jobQueue (app: FastifyInstance, { options = {} }: { options?: JobsOptions }) {
  // pg-boss does not await some of its own statements (completing or failing a job): they are tracked
  // so that stopping waits for them before the database closes.
  const pending = new Set<Promise<RawResult>>()
  const db: PgBoss.Db = {
    executeSql: (text, values) => {
      const running = app.database.query(text, values)
      pending.add(running)
      const settle = () => { pending.delete(running) }
      running.then(settle, settle)
      return running
    }
  }
  const boss = new PgBoss({ db, schema: QUEUE_SCHEMA, schedule: false, supervise: true, maintenanceIntervalSeconds: 60 })
  boss.on('error', (error) => { app.log.error({ err: error }, 'job queue error') })

  const interrupt = new AbortController()
  let workerId: string | undefined
  let started = false
  const queues = new Map<string, { work: QueueWorker<object>, options: QueueOptions }>()
  const workerIds = new Map<string, string[]>()
  let stopping: Promise<void> | undefined

  // Imports take turns: one that has run its turn while others wait is queued again behind them, as a new queue
  // entry (the current one completes once this returns). The job row's lock and `processed` make the next run resume
  // where this one stopped, whichever entry or instance runs it; an entry left over by a crash in between finds
  // nothing to do.
  const turn = {
    batches: options.turnBatches ?? TURN_BATCHES,
    othersWaiting: async () => (await boss.getQueueSize(IMPORT_QUEUE) ?? 0) > 0
  }
  const work = async (jobs: Array<PgBoss.JobWithMetadata<{ jobId: string }>>) => {
    for (const job of jobs) {
      const { jobId } = job.data
      try {
        const outcome = await runImport(app.db, jobId, { batchSize: options.batchSize ?? BATCH_SIZE[app.database.driver], signal: interrupt.signal, afterBatch: options.afterBatch, turn })
        if (outcome === 'paused') await boss.send(IMPORT_QUEUE, { jobId }, RETRIES)
        // pg-boss waits out the rest of its polling interval after every job unless notified: with a backlog of
        // small imports, that would cap a worker at two imports a second. The next fetch comes at once instead.
        if (workerId !== undefined) boss.notifyWorker(workerId)
      } catch (error) {
        const interrupted = error instanceof ImportInterruptedError
        if (!interrupted) app.log.error({ err: error, jobId, attempt: job.retryCount + 1 }, 'import failed')
        if (job.retryCount >= job.retryLimit) {
          await finish(app.db, jobId, { status: 'failed', error: 'The import could not be completed after repeated attempts' })
        }
        throw error
      }
    }
  }

  app.addHook('onReady', async () => {
    // pg-boss installs its schema at start, and a queue is a table of its own: instances starting together
    // must not race to create them (concurrent creations fail or deadlock).
    await app.database.whileChangingSchema(async () => {
      await boss.start()
      started = true
      await boss.createQueue(IMPORT_QUEUE)
      for (const name of queues.keys()) await boss.createQueue(name)
    })
    if (options.worker !== false) {
      workerId = await boss.work(IMPORT_QUEUE, { batchSize: 1, pollingIntervalSeconds: 0.5, includeMetadata: true }, work)
      for (const [name, { work, options: { workers = 1, batchSize = 1, pollingIntervalSeconds = 0.5 } }] of queues) {
        const ids: string[] = []
        for (let n = 0; n < workers; n++) ids.push(await boss.work(name, { batchSize, pollingIntervalSeconds, includeMetadata: true }, work))
        workerIds.set(name, ids)
      }
    }
  })

  const stop = () => (stopping ??= (async () => {
    interrupt.abort()
    if (started) await boss.stop({ graceful: true, wait: true, timeout: STOP_TIMEOUT_MS })
    await Promise.allSettled([...pending])
  })())

  app.decorate('jobQueue', {
    define: <T extends object>(name: string, work: QueueWorker<T>, queueOptions: QueueOptions = {}) => {
      if (started) throw new Error(`The queue ${name} is declared after the job queue started`)
      // Stored beside other queues' workers; pg-boss hands it only jobs sent to this queue, whose data are `T`s.
      queues.set(name, { work: work as QueueWorker<object>, options: queueOptions })
    },
    send: async (tx, name, data, sendOptions = {}) => {
      const id = await boss.send(name, data, tx === undefined ? sendOptions : { ...sendOptions, db: transactionDb(tx) })
      if (id === null) throw new Error(`the ${name} queue did not accept a job`)
    },
    enqueueImport: async (tx, jobId) => {
      const id = await boss.send(IMPORT_QUEUE, { jobId }, { id: jobId, singletonKey: jobId, ...RETRIES, db: transactionDb(tx) })
      if (id === null) throw new Error(`the ${IMPORT_QUEUE} queue did not accept job ${jobId}`)
    },
    wake: (queue = IMPORT_QUEUE) => {
      for (const id of queue === IMPORT_QUEUE ? [workerId] : workerIds.get(queue) ?? []) if (id !== undefined) boss.notifyWorker(id)
    },
    stop
  } satisfies JobQueue)

  app.addHook('onClose', stop)
}, { name: 'job-queue', dependencies: ['db'] })

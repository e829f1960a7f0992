import { createHash } from 'node:crypto'
import { and, count, eq, inArray, sql } from 'drizzle-orm'
import { v7 as uuidv7 } from 'uuid'
import { userTopic } from '../../schemas/events.js'
import { API_PREFIX } from '../../schemas/common.js'
import type { ImportResult, Job, JobStatus } from '../../schemas/jobs.js'
import type { Executor } from '../db/client.js'
import { files, jobs, users } from '../db/schema.js'
import { entityTag } from '../kit/responses.js'
import { emit, newEvent, type NewEvent } from '../realtime/outbox.js'
import { insertFile } from '../storage/files.js'

export type JobRow = typeof jobs.$inferSelect

export const jobUrl = (id: string) => `${API_PREFIX}/jobs/${id}`

/** The formats an import reads, by the content type its file is stored under. */
export type ImportFormat = 'text/csv' | 'application/x-ndjson'

export const toJob = (row: JobRow): Job => ({
  id: row.id,
  kind: 'items.import',
  status: row.status as JobStatus,
  progress: row.progress,
  // Only this module writes `result`, always as an ImportResult.
  result: row.result as ImportResult | null,
  error: row.error,
  createdAt: row.createdAt.toISOString(),
  finishedAt: row.finishedAt?.toISOString() ?? null
})

/** A job's events are its creator's, on their private topic. */
const jobUpdated = (row: JobRow): NewEvent => newEvent('job.updated', userTopic(row.ownerId), toJob(row))

/** A job changes many times a second while it runs: its version is the hash of its representation, which changes with every visible change. */
export const jobEtag = (job: Job) => entityTag(job.id, createHash('sha256').update(JSON.stringify(job)).digest('base64url').slice(0, 27))

export interface NewUpload {
  ownerId: string
  contentType: ImportFormat
  data: Buffer
}

/** Stores the file and a queued import job reading it, with its first `job.updated`, in the caller's transaction. */
export async function insertImportJob (tx: Executor, upload: NewUpload): Promise<JobRow> {
  const fileId = await insertFile(tx, upload.ownerId, upload)
  const [row] = await tx.insert(jobs).values({
    id: uuidv7(),
    kind: 'items.import',
    ownerId: upload.ownerId,
    status: 'queued',
    inputFileId: fileId
  }).returning()
  if (row === undefined) throw new Error('insert returned no row')
  await emit(tx, jobUpdated(row))
  return row
}

/**
 * How many imports of `ownerId` are queued or running, counted under a lock on the user's row that lasts the
 * caller's transaction: two requests of one user check and insert one after the other, so neither passes a cap the
 * other fills. (`NO KEY UPDATE` leaves alone the key-share locks that inserting rows owned by the user takes.)
 */
export async function lockAndCountActiveImports (tx: Executor, ownerId: string): Promise<number> {
  await tx.select({ id: users.id }).from(users).where(eq(users.id, ownerId)).for('no key update')
  const [row] = await tx.select({ active: count() }).from(jobs)
    .where(and(eq(jobs.ownerId, ownerId), eq(jobs.kind, 'items.import'), inArray(jobs.status, ['queued', 'running'])))
  return Number(row?.active ?? 0)
}

export async function findJobById (db: Executor, id: string): Promise<JobRow | undefined> {
  const [row] = await db.select().from(jobs).where(eq(jobs.id, id))
  return row
}

/** Locks a job's row for the rest of the transaction: one batch of one worker at a time. */
export async function lockJob (db: Executor, id: string): Promise<JobRow | undefined> {
  const [row] = await db.select().from(jobs).where(eq(jobs.id, id)).for('update')
  return row
}

export async function findInputFile (db: Executor, id: string): Promise<{ contentType: string, data: Uint8Array } | undefined> {
  const [row] = await db.select({ contentType: files.contentType, data: files.data }).from(files).where(eq(files.id, id))
  return row
}

export async function updateJob (
  db: Executor,
  id: string,
  changes: Partial<Pick<JobRow, 'status' | 'progress' | 'processed' | 'result' | 'error' | 'finishedAt'>>,
  whenStatus?: JobStatus[]
): Promise<JobRow | undefined> {
  return await db.transaction(async (tx) => {
    const [row] = await tx.update(jobs)
      .set({ ...changes, updatedAt: sql`now()` })
      .where(whenStatus === undefined ? eq(jobs.id, id) : and(eq(jobs.id, id), inArray(jobs.status, whenStatus)))
      .returning()
    if (row !== undefined) await emit(tx, jobUpdated(row))
    return row
  })
}

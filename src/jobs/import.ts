import { performance } from 'node:perf_hooks'
import { finished } from 'node:stream/promises'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { MAX_ISSUE_TEXT } from '../../schemas/common.js'
import { ItemCreateSchema, type ItemCreate } from '../../schemas/items.js'
import { MAX_LISTED_IMPORT_ERRORS, type ImportError, type ImportResult } from '../../schemas/jobs.js'
import type { Db } from '../db/client.js'
import { insertItems } from '../items/repository.js'
import { findNul } from '../lib/nul.js'
import { clip } from '../lib/problem.js'
import { compileBodyValidator } from '../lib/validation.js'
import { validationIssues } from '../lib/validation-issues.js'
import { findInputFile, findJobById, lockJob, updateJob, type ImportFormat, type JobRow } from './repository.js'

type RowIssue = ImportError['errors'][number]

/**
 * One data row of an import file: its text (an NDJSON line, parsed when its batch runs), its value, or why it
 * could not be read as a row at all.
 */
interface Row {
  line: number
  text?: string
  value?: unknown
  unreadable?: RowIssue[]
}

/** The file as a whole cannot be read: the job fails with this message. */
class UnreadableFileError extends Error {
  override name = 'UnreadableFileError'
}

/** The run stopped between batches because its worker is shutting down; the next run resumes it. */
export class ImportInterruptedError extends Error {
  override name = 'ImportInterruptedError'
  constructor () {
    super('The import was interrupted by a shutdown; it resumes where it stopped')
  }
}

const CSV_HEADER = ['name', 'description', 'price', 'tags'] as const
const MAX_ISSUES_PER_ROW = 100

/** `ItemCreate` as the API checks JSON bodies (prices to 2 decimals); without defaults, so a row is stored as it was written. */
const itemIssues = compileBodyValidator(ItemCreateSchema)

/** Texts of a row's issues are cut as a problem's are. */
const clipped = (text: string) => clip(text, MAX_ISSUE_TEXT)

/** Why a row is not a valid `ItemCreate`; empty when it is. */
function rowIssues (value: unknown): RowIssue[] {
  const failures = itemIssues(value)
  if (failures.length > 0) {
    return validationIssues('body', failures)
      .slice(0, MAX_ISSUES_PER_ROW)
      .map(({ path, message }) => ({ path: clipped(path), message: clipped(message) }))
  }
  // Postgres refuses NUL in text, as the API does.
  return findNul(value).map((path) => ({ path, message: 'must not contain NUL characters' }))
}

/** Longest stretch of work between two turns of the event loop while a file is read. */
const READ_SLICE_MS = 10

/**
 * Returns a function that gives the event loop a turn once `sliceMs` have passed since the last one. PGlite runs in
 * this process and its awaits resolve as microtasks: without these turns a whole import would run before any request.
 */
function pacer (sliceMs: number): () => Promise<void> {
  let since = performance.now()
  return async () => {
    if (performance.now() - since < sliceMs) return
    await nextTurn()
    since = performance.now()
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function decode (data: Uint8Array): string {
  try {
    // A leading byte order mark is dropped.
    return utf8.decode(data)
  } catch {
    throw new UnreadableFileError('The file is not valid UTF-8')
  }
}

/** One JSON value per line, left as text until its batch runs; blank lines are skipped but counted. */
async function ndjsonRows (text: string): Promise<Row[]> {
  const pace = pacer(READ_SLICE_MS)
  const rows: Row[] = []
  const lines = text.split('\n')
  for (let index = 0; index < lines.length; index++) {
    if (index % 1024 === 0) await pace()
    const raw = lines[index] ?? ''
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (line.trim() !== '') rows.push({ line: index + 1, text: line })
  }
  return rows
}

/** The value of an NDJSON line, or why it is not JSON. */
function parsed (row: Row): Row {
  if (row.text === undefined) return row
  try {
    return { line: row.line, value: JSON.parse(row.text) }
  } catch {
    return { line: row.line, unreadable: [{ path: '', message: 'is not valid JSON' }] }
  }
}

const DECIMAL = /^-?[0-9]+(\.[0-9]+)?$/

/** A CSV record as an `ItemCreate` candidate; a price that is not a plain decimal stays text, so validation names it. */
function csvItem ([name = '', description = '', price = '', tags = '']: string[]): unknown {
  const trimmed = price.trim()
  return {
    name,
    description: description === '' ? null : description,
    price: DECIMAL.test(trimmed) ? Number(trimmed) : price,
    tags: tags === '' ? [] : tags.split('|')
  }
}

/** What `info` and `raw` make csv-parse return per record (its typings describe the plain form only). */
interface CsvRecord { record: string[], raw: string, info: { lines: number } }

const CSV_CHUNK = 64 * 1024

/** Every record of a CSV text, fed to the streaming parser a chunk per turn of the event loop. */
async function csvRecords (text: string): Promise<CsvRecord[]> {
  const records: CsvRecord[] = []
  // Loaded when first needed, like the CSV imports themselves.
  const { CsvError, parse: csvParser } = await import('csv-parse')
  const parser = csvParser({ info: true, raw: true, relax_column_count: true, skip_empty_lines: true })
  parser.on('data', (record: CsvRecord) => { records.push(record) })
  const done = finished(parser)
  for (let start = 0; start < text.length && !parser.destroyed; start += CSV_CHUNK) {
    parser.write(text.slice(start, start + CSV_CHUNK))
    await nextTurn()
  }
  parser.end()
  try {
    await done
  } catch (error) {
    if (error instanceof CsvError) throw new UnreadableFileError(`The CSV file is malformed: ${clipped(error.message)}`)
    throw error
  }
  return records
}

/** RFC 4180 CSV under the header `name,description,price,tags`; empty lines are skipped. */
async function csvRows (text: string): Promise<Row[]> {
  const records = await csvRecords(text)
  const header = records[0]
  if (header === undefined || header.record.join(',') !== CSV_HEADER.join(',')) {
    throw new UnreadableFileError(`The CSV header row must be exactly ${CSV_HEADER.join(',')}`)
  }
  const pace = pacer(READ_SLICE_MS)
  const rows: Row[] = []
  for (let index = 1; index < records.length; index++) {
    if (index % 1024 === 0) await pace()
    const { record, raw, info } = records[index] as CsvRecord
    // `info.lines` is where the record ends: step back over the line breaks inside its quoted fields.
    const body = raw.replace(/^[\r\n]+/, '').replace(/(\r\n|\r|\n)$/, '')
    const line = info.lines - (body.match(/\n/g)?.length ?? 0)
    rows.push(record.length === CSV_HEADER.length
      ? { line, value: csvItem(record) }
      : { line, unreadable: [{ path: '', message: `must have ${CSV_HEADER.length} fields (${CSV_HEADER.join(',')}), not ${record.length}` }] })
  }
  return rows
}

async function readRows (format: string, data: Uint8Array): Promise<Row[]> {
  const formats: Record<ImportFormat, (text: string) => Promise<Row[]>> = { 'text/csv': csvRows, 'application/x-ndjson': ndjsonRows }
  const read = formats[format as ImportFormat] as ((text: string) => Promise<Row[]>) | undefined
  if (read === undefined) throw new UnreadableFileError(`Files of type ${format} cannot be imported`)
  return await read(decode(data))
}

const emptyResult = (): ImportResult => ({ created: 0, failed: 0, errors: [] })

/** A batch checked before its transaction opens, so the transaction holds the connection for its statements only. */
interface CheckedBatch {
  valid: ItemCreate[]
  failed: number
  /** The first rejected rows of the batch, as many as a result may still list. */
  errors: ImportError[]
}

function checkBatch (batch: Row[]): CheckedBatch {
  const checked: CheckedBatch = { valid: [], failed: 0, errors: [] }
  for (const row of batch.map(parsed)) {
    const issues = row.unreadable ?? rowIssues(row.value)
    if (issues.length === 0) {
      checked.valid.push(row.value as ItemCreate)
    } else {
      checked.failed++
      if (checked.errors.length < MAX_LISTED_IMPORT_ERRORS) checked.errors.push({ line: row.line, errors: issues })
    }
  }
  return checked
}

/** `result` with a batch added; the listed errors stay capped. */
const withBatch = (result: ImportResult, created: number, batch: CheckedBatch): ImportResult => ({
  created: result.created + created,
  failed: result.failed + batch.failed,
  errors: result.errors.length >= MAX_LISTED_IMPORT_ERRORS ? result.errors : [...result.errors, ...batch.errors].slice(0, MAX_LISTED_IMPORT_ERRORS)
})

export interface ImportRunOptions {
  /** Rows per transaction. */
  batchSize: number
  /** Aborted when the worker shuts down: the run stops after the batch in progress. */
  signal?: AbortSignal
  /** Called after each committed batch with the rows processed so far (tests pause or interrupt runs here). */
  afterBatch?: (jobId: string, processed: number) => Promise<void> | void
  /**
   * Every `batches` batches, the run asks whether other imports are waiting for the worker; if so it stops there
   * (`paused`), for its worker to queue the rest behind them.
   */
  turn?: { batches: number, othersWaiting: () => Promise<boolean> }
}

/** `finished`: nothing is left to do here (done, failed, or taken over by another run); `paused`: rows remain, see `turn`. */
export type ImportRunOutcome = 'finished' | 'paused'

/**
 * Runs an import job, or resumes it after the last committed batch. Each batch creates its items and
 * records its progress in one transaction, under a lock on the job's row; a run that finds the row
 * moved on (another run took the job over) stops, so no row is ever imported twice.
 */
export async function runImport (db: Db, jobId: string, options: ImportRunOptions): Promise<ImportRunOutcome> {
  const job = await findJobById(db, jobId)
  if (job === undefined || job.status === 'succeeded' || job.status === 'failed') return 'finished'
  if (job.status === 'queued') await updateJob(db, jobId, { status: 'running', result: emptyResult() }, ['queued'])

  let rows: Row[]
  try {
    rows = await loadRows(db, job)
  } catch (error) {
    if (!(error instanceof UnreadableFileError)) throw error
    await finish(db, jobId, { status: 'failed', error: error.message })
    return 'finished'
  }

  let processed = job.processed
  for (let batches = 1; processed < rows.length; batches++) {
    if (options.signal?.aborted === true) throw new ImportInterruptedError()
    const batch = checkBatch(rows.slice(processed, processed + options.batchSize))
    const done = Math.min(processed + options.batchSize, rows.length)
    const committed = await db.transaction(async (tx) => {
      const current = await lockJob(tx, jobId)
      if (current?.status !== 'running' || current.processed !== processed) return false
      const created = (await insertItems(tx, job.ownerId, batch.valid)).length
      const result = withBatch((current.result as ImportResult | null) ?? emptyResult(), created, batch)
      await updateJob(tx, jobId, { processed: done, progress: done / rows.length, result })
      return true
    })
    if (!committed) return 'finished'
    processed = done
    await options.afterBatch?.(jobId, processed)
    // Let requests waiting on the event loop (or on PGlite's one connection) in between batches.
    await nextTurn()
    const { turn } = options
    if (turn !== undefined && processed < rows.length && batches % turn.batches === 0 && await turn.othersWaiting()) return 'paused'
  }
  await finish(db, jobId, { status: 'succeeded' })
  return 'finished'
}

async function loadRows (db: Db, job: JobRow): Promise<Row[]> {
  const file = job.inputFileId === null ? undefined : await findInputFile(db, job.inputFileId)
  if (file === undefined) throw new UnreadableFileError('The uploaded file no longer exists')
  return await readRows(file.contentType, file.data)
}

/** Ends a job; one already ended stays as it is. */
export async function finish (db: Db, jobId: string, end: { status: 'succeeded' } | { status: 'failed', error: string }): Promise<void> {
  await updateJob(db, jobId, {
    ...end,
    ...(end.status === 'succeeded' ? { progress: 1 } : {}),
    finishedAt: new Date()
  }, ['queued', 'running'])
}

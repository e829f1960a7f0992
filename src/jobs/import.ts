import { CsvError, parse as parseCsv } from 'csv-parse/sync'
import { ItemCreateSchema, type ItemCreate } from '../../schemas/items.js'
import { MAX_LISTED_IMPORT_ERRORS, type ImportError, type ImportResult } from '../../schemas/jobs.js'
import type { Db } from '../db/client.js'
import { insertItems } from '../items/repository.js'
import { compileBodyValidator } from '../lib/validation.js'
import { findNul, validationIssues } from '../plugins/errors.js'
import { findInputFile, findJobById, lockJob, updateJob, type ImportFormat, type JobRow } from './repository.js'

type RowIssue = ImportError['errors'][number]

/** One data row of an import file: its value, or why it could not be read as a row at all. */
interface Row {
  line: number
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
const MAX_TEXT = 1000

/** `ItemCreate` as the API checks JSON bodies (prices to 2 decimals); without defaults, so a row is stored as it was written. */
const itemIssues = compileBodyValidator(ItemCreateSchema)

const clip = (text: string) => text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text

/** Why a row is not a valid `ItemCreate`; empty when it is. */
function rowIssues (value: unknown): RowIssue[] {
  const failures = itemIssues(value)
  if (failures.length > 0) {
    return validationIssues('body', failures)
      .slice(0, MAX_ISSUES_PER_ROW)
      .map(({ path, message }) => ({ path: clip(path), message: clip(message) }))
  }
  // Postgres refuses NUL in text, as the API does.
  return findNul(value).map((path) => ({ path, message: 'must not contain NUL characters' }))
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

/** One JSON value per line; blank lines are skipped but counted. */
function ndjsonRows (text: string): Row[] {
  const rows: Row[] = []
  text.split('\n').forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (line.trim() === '') return
    try {
      rows.push({ line: index + 1, value: JSON.parse(line) })
    } catch {
      rows.push({ line: index + 1, unreadable: [{ path: '', message: 'is not valid JSON' }] })
    }
  })
  return rows
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

/** RFC 4180 CSV under the header `name,description,price,tags`; empty lines are skipped. */
function csvRows (text: string): Row[] {
  let records: CsvRecord[]
  try {
    records = parseCsv(text, { info: true, raw: true, relax_column_count: true, skip_empty_lines: true }) as unknown as CsvRecord[]
  } catch (error) {
    if (error instanceof CsvError) throw new UnreadableFileError(`The CSV file is malformed: ${clip(error.message)}`)
    throw error
  }
  const [header, ...data] = records
  if (header === undefined || header.record.join(',') !== CSV_HEADER.join(',')) {
    throw new UnreadableFileError(`The CSV header row must be exactly ${CSV_HEADER.join(',')}`)
  }
  return data.map(({ record, raw, info }) => {
    // `info.lines` is where the record ends: step back over the line breaks inside its quoted fields.
    const body = raw.replace(/^[\r\n]+/, '').replace(/(\r\n|\r|\n)$/, '')
    const line = info.lines - (body.match(/\n/g)?.length ?? 0)
    if (record.length !== CSV_HEADER.length) {
      return { line, unreadable: [{ path: '', message: `must have ${CSV_HEADER.length} fields (${CSV_HEADER.join(',')}), not ${record.length}` }] }
    }
    return { line, value: csvItem(record) }
  })
}

function readRows (format: string, data: Uint8Array): Row[] {
  const text = decode(data)
  const formats: Record<ImportFormat, (text: string) => Row[]> = { 'text/csv': csvRows, 'application/x-ndjson': ndjsonRows }
  const read = formats[format as ImportFormat] as ((text: string) => Row[]) | undefined
  if (read === undefined) throw new UnreadableFileError(`Files of type ${format} cannot be imported`)
  return read(text)
}

const emptyResult = (): ImportResult => ({ created: 0, failed: 0, errors: [] })

export interface ImportRunOptions {
  /** Rows per transaction. */
  batchSize: number
  /** Aborted when the worker shuts down: the run stops after the batch in progress. */
  signal?: AbortSignal
  /** Called after each committed batch with the rows processed so far (tests pause or interrupt runs here). */
  afterBatch?: (jobId: string, processed: number) => Promise<void> | void
}

/**
 * Runs an import job, or resumes it after the last committed batch. Each batch creates its items and
 * records its progress in one transaction, under a lock on the job's row; a run that finds the row
 * moved on (another run took the job over) stops, so no row is ever imported twice.
 */
export async function runImport (db: Db, jobId: string, options: ImportRunOptions): Promise<void> {
  const job = await findJobById(db, jobId)
  if (job === undefined || job.status === 'succeeded' || job.status === 'failed') return
  if (job.status === 'queued') await updateJob(db, jobId, { status: 'running', result: emptyResult() }, ['queued'])

  let rows: Row[]
  try {
    rows = await loadRows(db, job)
  } catch (error) {
    if (!(error instanceof UnreadableFileError)) throw error
    await finish(db, jobId, { status: 'failed', error: error.message })
    return
  }

  let processed = job.processed
  while (processed < rows.length) {
    if (options.signal?.aborted === true) throw new ImportInterruptedError()
    const batch = rows.slice(processed, processed + options.batchSize)
    const done = processed + batch.length
    const committed = await db.transaction(async (tx) => {
      const current = await lockJob(tx, jobId)
      if (current?.status !== 'running' || current.processed !== processed) return false
      const result = current.result === null ? emptyResult() : structuredClone(current.result as ImportResult)
      const valid: ItemCreate[] = []
      for (const row of batch) {
        const issues = row.unreadable ?? rowIssues(row.value)
        if (issues.length === 0) {
          valid.push(row.value as ItemCreate)
        } else {
          result.failed++
          if (result.errors.length < MAX_LISTED_IMPORT_ERRORS) result.errors.push({ line: row.line, errors: issues })
        }
      }
      result.created += (await insertItems(tx, job.ownerId, valid)).length
      await updateJob(tx, jobId, { processed: done, progress: done / rows.length, result })
      return true
    })
    if (!committed) return
    processed = done
    await options.afterBatch?.(jobId, processed)
  }
  await finish(db, jobId, { status: 'succeeded' })
}

async function loadRows (db: Db, job: JobRow): Promise<Row[]> {
  const file = job.inputFileId === null ? undefined : await findInputFile(db, job.inputFileId)
  if (file === undefined) throw new UnreadableFileError('The uploaded file no longer exists')
  return readRows(file.contentType, file.data)
}

/** Ends a job; one already ended stays as it is. */
export async function finish (db: Db, jobId: string, end: { status: 'succeeded' } | { status: 'failed', error: string }): Promise<void> {
  await updateJob(db, jobId, {
    ...end,
    ...(end.status === 'succeeded' ? { progress: 1 } : {}),
    finishedAt: new Date()
  }, ['queued', 'running'])
}

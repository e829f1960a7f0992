import { Type, type Static } from '@sinclair/typebox'
import { DateTime, defineResource, IdParamsSchema, Nullable, problemResponse, problems, Ref, requires, StrictObject, StringEnum, Uuid } from './common.js'
import { cacheControlHeader, entityHeaders } from './http.js'

export const JOB_KINDS = ['items.import'] as const
export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const
export type JobStatus = typeof JOB_STATUSES[number]

/** At most this many rejected rows are listed in a result; the counts stay exact past it. */
export const MAX_LISTED_IMPORT_ERRORS = 1000

export const ImportErrorSchema = StrictObject({
  line: Type.Integer({ minimum: 1, description: 'The line of the file the row starts on (the CSV header is line 1)', examples: [3] }),
  errors: Type.Array(StrictObject({
    path: Type.String({ maxLength: 1000, description: 'JSON pointer to the failing field of the row; empty for the row as a whole', examples: ['/price'] }),
    message: Type.String({ maxLength: 1000, examples: ['must be <= 1000000000'] })
  }), { maxItems: 100, description: 'Every failing field of the row' })
}, {
  $id: 'ImportError',
  title: 'ImportError',
  description: 'A row of an import that was not created, and why.',
  examples: [{ line: 3, errors: [{ path: '/price', message: 'must be number' }] }]
})

export const ImportResultSchema = StrictObject({
  created: Type.Integer({ minimum: 0, description: 'Items created so far' }),
  failed: Type.Integer({ minimum: 0, description: 'Rows rejected so far' }),
  errors: Type.Array(Ref(ImportErrorSchema), {
    maxItems: MAX_LISTED_IMPORT_ERRORS,
    description: `The rejected rows in file order; only the first ${MAX_LISTED_IMPORT_ERRORS} are listed, \`failed\` counts them all`
  })
}, {
  $id: 'ImportResult',
  title: 'ImportResult',
  description: 'What an item import has done: valid rows become items, invalid rows are counted and listed.',
  examples: [{ created: 41, failed: 1, errors: [{ line: 3, errors: [{ path: '/price', message: 'must be number' }] }] }]
})

export const JobSchema = StrictObject({
  id: Uuid({ examples: ['0196f1c2-7a8b-7cde-8f01-23456789abcd'] }),
  kind: StringEnum(JOB_KINDS, { description: 'What the job does' }),
  status: StringEnum(JOB_STATUSES, {
    description: '`queued` until a worker takes it, `running` while it works, then `succeeded` (even when some rows were rejected) ' +
      'or `failed` (the file could not be read; `error` says why)'
  }),
  progress: Type.Number({ minimum: 0, maximum: 1, description: 'The share of the rows processed, from 0 to 1' }),
  result: Nullable(Ref(ImportResultSchema, { description: 'What the import has done so far; null before it starts' })),
  error: Nullable(Type.String({ maxLength: 2000, description: 'Why the job failed; null unless `status` is `failed`' })),
  createdAt: DateTime(),
  finishedAt: Nullable(DateTime({ description: 'When the job succeeded or failed; null until then' }))
}, {
  $id: 'Job',
  title: 'Job',
  description: 'A background job: poll it until `status` is `succeeded` or `failed`.',
  examples: [{
    id: '0196f1c2-7a8b-7cde-8f01-23456789abcd',
    kind: 'items.import',
    status: 'succeeded',
    progress: 1,
    result: { created: 41, failed: 1, errors: [{ line: 3, errors: [{ path: '/price', message: 'must be number' }] }] },
    error: null,
    createdAt: '2025-05-01T12:00:00.000Z',
    finishedAt: '2025-05-01T12:00:02.000Z'
  }]
})

/** The multipart form of an import: one part, `file`. Documentation only: the handler reads it as a stream. */
export const ItemImportUploadSchema = StrictObject({
  file: Type.String({
    format: 'binary',
    description: 'NDJSON (`.ndjson` or `application/x-ndjson`: one `ItemCreate` object per line, blank lines skipped) or ' +
      'CSV (`.csv` or `text/csv`: RFC 4180, header row exactly `name,description,price,tags`, tags separated by `|`, ' +
      'an empty description is null); UTF-8, at most `UPLOAD_MAX_BYTES` (5 MiB by default)'
  })
}, {
  $id: 'ItemImportUpload',
  title: 'ItemImportUpload',
  description: '`multipart/form-data` with exactly one part, named `file`.'
})

export type Job = Static<typeof JobSchema>
export type ImportResult = Static<typeof ImportResultSchema>
export type ImportError = Static<typeof ImportErrorSchema>

export const jobsResource = defineResource({
  tag: { name: 'jobs', description: 'Background jobs such as item imports' },
  components: [ImportErrorSchema, ImportResultSchema, JobSchema, ItemImportUploadSchema]
})

export const job = entityHeaders('job', '"0196f1c2-7a8b-7cde-8f01-23456789abcd.1746100800000"')
const privateNoCache = cacheControlHeader('private, no-cache')

export const importItems = {
  operationId: 'importItems',
  tags: ['items'],
  summary: 'Import items from a file',
  description: 'Accepts an NDJSON or CSV file of `ItemCreate` rows and answers at once with a queued `Job`; ' +
    'a worker then creates the items, owned by you, in batches. Poll `Location` (the job) until it has finished. ' +
    'Rows that fail validation are skipped and reported in `result.errors` with their line; the job still succeeds. ' +
    'It fails only when the file itself cannot be read (not UTF-8, malformed CSV, a wrong CSV header). ' +
    'The job survives a restart of the server. A body that is not `multipart/form-data`, or a file that is neither NDJSON nor CSV, is 415; ' +
    'a file over the size limit is 413; a body without a `file` part is 400. Honours `Idempotency-Key`. ' +
    'A user may have `IMPORT_MAX_ACTIVE_PER_USER` imports (3 by default) queued or running at once: past that it is 429, ' +
    'with `Retry-After`. Imports of different users take turns on the worker, so a long one does not hold up the others.',
  security: requires(['items:write']),
  body: {
    description: 'The file, as the `file` part of a `multipart/form-data` body',
    content: { 'multipart/form-data': { schema: Ref(ItemImportUploadSchema) } }
  },
  response: {
    202: job.created('Accepted: the import is queued', JobSchema),
    ...problems(403),
    429: problemResponse(429, 'Too many requests, or too many imports of yours queued or running already: retry after `Retry-After` seconds', {
      type: 'urn:catalog-api:problem:too-many-imports',
      title: 'Too Many Requests',
      status: 429,
      detail: 'You have 3 imports queued or running, the most allowed at once: retry once one has finished',
      instance: '/api/v1/items/import'
    })
  }
} as const

export const getJob = {
  operationId: 'getJob',
  tags: ['jobs'],
  summary: 'Get a job',
  description: 'A job\'s status, progress and result. Only its creator (`items:write`) or an admin may read it; ' +
    'someone else\'s job is 403. Send the `ETag` as `If-None-Match` to get 304 while nothing changed.',
  security: requires(['items:write'], ['admin']),
  params: IdParamsSchema,
  headers: job.ifNoneMatch,
  response: {
    200: job.ok('The job', JobSchema, privateNoCache),
    304: job.notModified(privateNoCache),
    ...problems(403, 404)
  }
} as const

import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { asc, eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import type { Job } from '../../schemas/jobs.js'
import { items } from '../../src/db/schema.js'
import { authHeader, login, signUp, type TokenPair } from '../helper.js'

export interface Part { name: string, content: string | Buffer, filename?: string, type?: string }

/** A `multipart/form-data` request body and its content type. */
export function multipart (parts: Part[]): { payload: Buffer, headers: Record<string, string> } {
  const boundary = `----catalog-test-${randomBytes(8).toString('hex')}`
  const chunks: Buffer[] = []
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename === undefined ? '' : `; filename="${part.filename}"`}`
    const type = part.type === undefined ? '' : `Content-Type: ${part.type}\r\n`
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`), Buffer.from(part.content), Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }
}

/** A signed-up user and their default-scope token (`profile items:write`). */
export async function user (app: FastifyInstance): Promise<{ id: string, token: TokenPair }> {
  const created = await signUp(app)
  return { id: created.id, token: await login(app, created.email) }
}

/** Uploads `content` as the `file` part of an import. */
export function postImport (app: FastifyInstance, token: TokenPair | string | undefined, file: Omit<Part, 'name'>, headers: Record<string, string> = {}) {
  const body = multipart([{ name: 'file', ...file }])
  return app.inject({
    method: 'POST',
    url: '/api/v1/items/import',
    payload: body.payload,
    headers: { ...body.headers, ...(token === undefined ? {} : authHeader(token)), ...headers }
  })
}

/** Imports a file and returns the queued job. */
export async function startImport (app: FastifyInstance, token: TokenPair, file: Omit<Part, 'name'>): Promise<Job> {
  const res = await postImport(app, token, file)
  if (res.statusCode !== 202) throw new Error(`import refused: ${res.statusCode} ${res.body}`)
  return res.json<Job>()
}

/** Polls the job every 50 ms, for up to 15 s, until it has finished. */
export async function finished (app: FastifyInstance, token: TokenPair, id: string): Promise<Job> {
  for (let attempt = 0; attempt < 300; attempt++) {
    const res = await app.inject({ url: `/api/v1/jobs/${id}`, headers: authHeader(token) })
    if (res.statusCode !== 200) throw new Error(`GET job: ${res.statusCode} ${res.body}`)
    const job = res.json<Job>()
    if (job.status === 'succeeded' || job.status === 'failed') return job
    await sleep(50)
  }
  throw new Error(`job ${id} did not finish within 15 s`)
}

/** The items a user owns, oldest first, with their prices as stored. */
export const itemsOf = (app: FastifyInstance, ownerId: string) =>
  app.db.select({ name: items.name, description: items.description, price: items.price, tags: items.tags })
    .from(items).where(eq(items.ownerId, ownerId)).orderBy(asc(items.createdAt), asc(items.id))

export const ndjson = (rows: unknown[]) => rows.map((row) => JSON.stringify(row)).join('\n') + '\n'

// The floor `npm run bench` measures the API against: a bare Fastify server on node-postgres answering the benchmarked
// routes with the SQL the API sends for them, as plain (unnamed) statements, and nothing else: no schemas, auth, limits,
// hooks or logging. Started by the bench as a child process on PORT against DATABASE_URL; it is told the owner of the
// items it creates in `x-owner-id`.
import Fastify from 'fastify'
import pg from 'pg'
import { INSERT_ITEMS, itemChanged, itemEtag, itemUrl, newItems, toItem, type ItemRow } from '../items/repository.js'

// The API's pool settings: ten connections, kept 30 s when idle.
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10, idleTimeoutMillis: 30_000 })
const app = Fastify()

const COLUMNS = `id, owner_id as "ownerId", name, description, price, tags, image_file_id as "imageFileId", version,
  created_at as "createdAt", updated_at as "updatedAt"`

app.get('/health/live', async () => ({ status: 'ok' }))

app.get<{ Params: { id: string } }>('/api/v1/items/:id', async (request, reply) => {
  const { rows } = await pool.query<ItemRow>(`select ${COLUMNS} from items where id = $1`, [request.params.id])
  const row = rows[0]
  if (row === undefined) return await reply.code(404).send({ status: 404 })
  return await reply.header('etag', itemEtag(row)).send(toItem(row))
})

app.get<{ Querystring: { limit?: string } }>('/api/v1/items', async (request) => {
  const limit = Number(request.query.limit ?? 20)
  const { rows } = await pool.query<ItemRow>(`select ${COLUMNS} from items order by created_at desc, id desc limit $1`, [limit + 1])
  const last = rows.length > limit ? rows[limit - 1] : undefined
  return { data: rows.slice(0, limit).map(toItem), nextCursor: last === undefined ? null : `${last.createdAt}.${last.id}` }
})

app.post<{ Body: { name: string, description?: string | null, price: number, tags?: string[] } }>('/api/v1/items', async (request, reply) => {
  const rows = newItems(String(request.headers['x-owner-id']), [request.body])
  await pool.query(INSERT_ITEMS, [JSON.stringify(rows), JSON.stringify(rows.map((row) => itemChanged('item.created', row)))])
  const [row] = rows
  if (row === undefined) throw new Error('no row')
  return await reply.code(201).header('location', itemUrl(row.id)).header('etag', itemEtag(row)).send(toItem(row))
})

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })

// `npm run explain:items`: seeds 100,000 items into the configured database (DATABASE_URL, else the embedded
// one under DATA_DIR) and prints EXPLAIN (ANALYZE, BUFFERS) of the items list's first page and of a deep page
// (past 40,000 rows: page 2,000 at 20 a page), newest first, by price, and by price then name descending
// (mixed directions). Meant for a scratch database: the seeded rows stay, and a second run reuses them.
import { randomBytes } from 'node:crypto'
import { count, eq, fillPlaceholders, sql } from 'drizzle-orm'
import Fastify from 'fastify'
import { loadConfigOrExit } from '../config.js'
import { openDatabase, type Database, type Db } from '../db/client.js'
import { items } from '../db/schema.js'
import { itemSortKeys, itemsPageRequest, listItems, selectItems } from '../items/repository.js'
import { loggerOptions } from '../lib/logger.js'
import { CursorCodec, pageValues } from '../lib/pagination.js'
import { findUserByEmail, insertUser } from '../users/repository.js'

const ITEMS = 100_000
const PAGE_SIZE = 20
const DEEP_PAGE = 2_000
const OWNER_EMAIL = 'explain-items@example.com'

const config = loadConfigOrExit()
const { log } = Fastify({ logger: loggerOptions(config) })

async function seed (db: Db): Promise<void> {
  // A password hash nothing verifies against: this user never logs in.
  const owner = await findUserByEmail(db, OWNER_EMAIL) ?? await insertUser(db, { email: OWNER_EMAIL, passwordHash: '!' })
  const [existing] = await db.select({ n: count() }).from(items).where(eq(items.ownerId, owner.id))
  const missing = ITEMS - Number(existing?.n ?? 0)
  if (missing > 0) {
    const started = performance.now()
    // Ten items share each price and twenty each updatedAt, so the id tie-breaker matters as it does in real data.
    await db.execute(sql`
      insert into items (id, owner_id, name, description, price, tags, created_at, updated_at)
      select gen_random_uuid(), ${owner.id}, 'Item ' || g, case when g % 3 = 0 then 'It runs on batteries' end,
             (g % 10000) / 100.0, array['tag' || (g % 50)], now() - g * interval '1 second', now() - (g / 20) * interval '1 second'
      from generate_series(1, ${missing}) as g`)
    console.log(`seeded ${missing} items in ${Math.round(performance.now() - started)} ms`)
  }
  await db.execute(sql`analyze items`)
}

/** The cursor after `DEEP_PAGE` pages, reached by walking the listing (in pages of 100) as a client would. */
async function deepCursor (db: Db, codec: CursorCodec, sort: string): Promise<string> {
  let cursor: string | undefined
  for (let seen = 0; seen < DEEP_PAGE * PAGE_SIZE; seen += 100) {
    const page = await listItems(db, codec, { sort, limit: 100, cursor, filters: {} })
    if (page.nextCursor === null) throw new Error(`fewer than ${DEEP_PAGE * PAGE_SIZE} items under sort=${sort}`)
    cursor = page.nextCursor
  }
  if (cursor === undefined) throw new Error('no cursor')
  return cursor
}

/** EXPLAIN of the statement the list prepares for this page, with the page's values. */
async function explain (database: Database, codec: CursorCodec, label: string, sort: string, cursor?: string): Promise<void> {
  const keys = itemSortKeys(sort)
  const query = selectItems(database.db, {}, keys, cursor !== undefined).toSQL()
  const values = pageValues(codec, keys, itemsPageRequest({ sort, limit: PAGE_SIZE, cursor, filters: {} }))
  const plan = await database.query(`explain (analyze, buffers) ${query.sql}`, fillPlaceholders(query.params, values))
  console.log(`\n## ${label}\n${(plan.rows as Array<{ 'QUERY PLAN': string }>).map((line) => line['QUERY PLAN']).join('\n')}`)
}

const database = await openDatabase(config, log)
try {
  console.log(`database: ${database.driver}`)
  await seed(database.db)
  const codec = new CursorCodec(randomBytes(32))
  for (const sort of ['-createdAt', 'price', 'price,-name']) {
    await explain(database, codec, `GET /api/v1/items?sort=${sort} — first page`, sort)
    await explain(database, codec, `GET /api/v1/items?sort=${sort} — page ${DEEP_PAGE}`, sort, await deepCursor(database.db, codec, sort))
  }
} catch (error) {
  log.fatal({ err: error }, 'explain:items failed')
  process.exitCode = 1
} finally {
  await database.close()
}

import { sql } from 'drizzle-orm'
import t from 'tap'
import { commitSignal } from '../../src/db/client.js'
import { build } from '../helper.js'

const app = await build(t)

t.test('commitSignal → every listener of the database hears a commit, none a rollback, and one that stops hears no more', async (t) => {
  const signal = commitSignal<string>()
  const heard: string[] = []
  const stopFirst = signal.listen(app.db, (value) => heard.push(`first ${value}`))
  signal.listen(app.db, (value) => heard.push(`second ${value}`))
  await app.db.transaction(async (tx) => {
    await tx.execute(sql`select 1`)
    signal.emit(tx, 'committed')
    t.same(heard, [], 'not before the commit')
  })
  t.same(heard, ['first committed', 'second committed'])
  await app.db.transaction(async (tx) => {
    signal.emit(tx, 'rolled back')
    tx.rollback()
  }).catch(() => undefined)
  stopFirst()
  signal.emit(app.db, 'later')
  t.same(heard, ['first committed', 'second committed', 'second later'])
})

import { setTimeout as sleep } from 'node:timers/promises'
import { count, sql } from 'drizzle-orm'
import t from 'tap'
import { eventLog, events } from '../../src/db/schema.js'
import { build } from '../helper.js'
import { finished, ndjson, startImport } from '../jobs/helpers.js'
import { connect, createItem, subscribe, user } from './helpers.js'

// Pruned by hand (`app.realtime.prune()`), so the tests decide when.
const app = await build(t, { EVENTS_RETENTION: '2s' }, { realtime: { pruneIntervalMs: 3_600_000 } })
const ada = await user(app)

const idOf = (message: Record<string, unknown> | undefined) => Number(message?.id)

t.test('subscribe with since replays every stored event after it, after `subscribed`, then goes on live without a duplicate', async (t) => {
  const watcher = await connect(t, app)
  await subscribe(watcher, ['items'])
  const made = [await createItem(app, ada.token, { name: 'one' }), await createItem(app, ada.token, { name: 'two' }), await createItem(app, ada.token, { name: 'three' })]
  const live = [await watcher.next(), await watcher.next(), await watcher.next()]

  const socket = await connect(t, app)
  const since = String(live[0]?.id)
  socket.send({ type: 'subscribe', topics: ['items'], since })
  t.same(await socket.next(), { type: 'subscribed', topics: ['items'] }, 'subscribed comes first')
  const replayed = [await socket.next(), await socket.next()]
  t.same(replayed, live.slice(1), 'the events after since, exactly as they were sent live')
  t.same(replayed.map((event) => (event.data as { name: string }).name), ['two', 'three'])

  const fourth = await createItem(app, ada.token, { name: 'four' })
  const next = await socket.next()
  t.match(next, { name: 'item.created', data: { id: fourth.id } })
  t.same(await socket.rest(), [], 'no duplicate')
  t.equal(made.length, 3)
})

t.test('since = the newest id replays nothing; since = 0 replays everything kept', async (t) => {
  const item = await createItem(app, ada.token)
  const [newest] = await app.db.select({ id: sql<number>`max(${events.id})` }).from(events)
  const socket = await connect(t, app)
  await subscribe(socket, ['items'], String(newest?.id))
  t.same(await socket.rest(), [])
  const all = await connect(t, app)
  await subscribe(all, ['items'], '0')
  const replayed = await all.rest()
  const [stored] = await app.db.select({ n: count() }).from(events).where(sql`${events.topic} = 'items'`)
  t.equal(replayed.length, Number(stored?.n), 'every stored event of the topic')
  t.match(replayed.at(-1), { data: { id: item.id } })
})

t.test('a replay of many pages, with writes going on and the live buffer overflowing, delivers each event once, in order', async (t) => {
  // Small pages and a tiny buffer for live events, so both the paging and the overflow path run.
  const small = await build(t, {}, { realtime: { replayBatch: 50, replayBuffer: 5 } })
  const owner = await user(small)
  const watcher = await connect(t, small)
  await subscribe(watcher, ['items'])
  await createItem(small, owner.token, { name: 'start' })
  const start = String((await watcher.next()).id)

  const job = await startImport(small, owner.token, { filename: 'many.ndjson', content: ndjson(Array.from({ length: 300 }, (_, index) => ({ name: `bulk ${index}`, price: 1 }))) })
  await finished(small, owner.token, job.id)
  const socket = await connect(t, small)
  socket.send({ type: 'subscribe', topics: ['items'], since: start })
  const during = await Promise.all(Array.from({ length: 30 }, (_, index) => createItem(small, owner.token, { name: `during ${index}` })))

  t.same(await socket.next(), { type: 'subscribed', topics: ['items'] })
  const received = await socket.rest(500)
  const ids = received.map(idOf)
  t.equal(new Set(ids).size, ids.length, 'no duplicate')
  t.ok(ids.every((id, index) => index === 0 || id > (ids[index - 1] ?? 0)), 'in id order')
  t.equal(received.length, 330, 'the 300 imported and the 30 created meanwhile')
  const names = new Set(received.map((event) => (event.data as { name: string }).name))
  t.ok(during.every((item) => names.has(item.name)), 'every item created during the replay')
})

t.test('a since older than the events kept → resync_required, and nothing is followed', async (t) => {
  const watcher = await connect(t, app)
  await subscribe(watcher, ['items'])
  await createItem(app, ada.token, { name: 'old' })
  await createItem(app, ada.token, { name: 'missed' })
  const old = await watcher.next()
  const missed = await watcher.next()
  await sleep(2_100)
  const pruned = await app.realtime.prune()
  t.ok(pruned > 0, 'events older than EVENTS_RETENTION are pruned')
  const [log] = await app.db.select().from(eventLog)
  t.ok((log?.prunedThrough ?? 0) >= idOf(missed), 'the newest pruned id is recorded')
  const [left] = await app.db.select({ n: count() }).from(events).where(sql`${events.id} <= ${idOf(missed)}`)
  t.equal(Number(left?.n), 0)

  const caughtUp = await connect(t, app)
  await subscribe(caughtUp, ['items'], String(log?.prunedThrough))
  t.same(await caughtUp.rest(), [], 'since = the newest pruned id: nothing after it is missing')

  const socket = await connect(t, app)
  // `missed`, after `old`, is gone.
  t.match(await socket.ask({ type: 'subscribe', topics: ['items'], since: String(old.id) }), {
    type: 'error', code: 'resync_required', message: /no longer kept: reload, then subscribe without since/
  })
  await createItem(app, ada.token)
  t.same(await socket.rest(), [], 'not subscribed')
  await subscribe(socket, ['items'])
  await createItem(app, ada.token)
  t.equal((await socket.next()).name, 'item.created', 'subscribing without since works')
})

t.test('a since this database never gave out → resync_required', async (t) => {
  const socket = await connect(t, app)
  t.match(await socket.ask({ type: 'subscribe', topics: ['items'], since: '9000000000000' }), { type: 'error', code: 'resync_required' })
})

t.test('replay covers only the topics asked for, and private ones only for their user', async (t) => {
  const bob = await user(app)
  const watcher = await connect(t, app)
  await subscribe(watcher, ['items'])
  await createItem(app, ada.token)
  const since = String((await watcher.next()).id)
  await startImport(app, ada.token, { filename: 'one.ndjson', content: ndjson([{ name: 'imported', price: 1 }]) })
  await createItem(app, bob.token)
  const socket = await connect(t, app, { token: bob.token })
  await subscribe(socket, [`user:${bob.id}`], since)
  t.same(await socket.rest(), [], 'neither Ada\'s job.updated nor any item')
})

t.test('events older than EVENTS_RETENTION are pruned in the background', async (t) => {
  const quick = await build(t, { EVENTS_RETENTION: '1s' }, { realtime: { pruneIntervalMs: 200 } })
  const owner = await user(quick)
  await createItem(quick, owner.token)
  const stored = async () => Number((await quick.db.select({ n: count() }).from(events))[0]?.n)
  t.ok(await stored() > 0)
  for (let waited = 0; waited < 5_000 && await stored() > 0; waited += 100) await sleep(100)
  t.equal(await stored(), 0, 'gone within a few seconds')
  const [log] = await quick.db.select().from(eventLog)
  t.ok((log?.prunedThrough ?? 0) > 0)
})

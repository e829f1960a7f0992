import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { build } from '../helper.js'
import { withClient } from '../databases.js'
import { logCapture } from '../log-capture.js'
import { connect, createItem, subscribe, user } from './helpers.js'

// The events table locked by another session (a long migration, say): reads of it time out after DB_STATEMENT_TIMEOUT.
const skip = process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== ''
  ? false
  : 'needs DATABASE_URL: on PGlite a second session cannot hold a lock while the app reads'

t.test('while the events cannot be read: a replay answers unavailable, the hub says so once and catches up afterwards', { skip }, async (t) => {
  const logs = logCapture()
  const app = await build(t, { DB_STATEMENT_TIMEOUT: '300ms', LOG_LEVEL: 'warn' }, { logStream: logs.stream, realtime: { pollIntervalMs: 100 } })
  const ada = await user(app)
  const live = await connect(t, app)
  await subscribe(live, ['items'])
  await createItem(app, ada.token)
  const since = String((await live.next()).id)

  // The test's own connection to the app's database.
  const { name } = (await app.database.query('select current_database() as name')).rows[0] as { name: string }
  const target = new URL(process.env.DATABASE_URL ?? '')
  target.pathname = `/${name}`

  let release: () => void = () => undefined
  const released = new Promise<void>((resolve) => { release = resolve })
  const locked = withClient(target.toString(), async (client) => {
    await client.query('begin')
    await client.query('lock table events in access exclusive mode')
    await released
    await client.query('commit')
  })
  await sleep(100)

  const direct = await app.injectWS('/api/v1/ws')
  const answers: unknown[] = []
  direct.on('message', (data: Buffer) => answers.push(JSON.parse(data.toString('utf8'))))
  direct.send(JSON.stringify({ type: 'subscribe', topics: ['items'], since }))
  for (let waited = 0; answers.length === 0 && waited < 5_000; waited += 50) await sleep(50)
  t.match(answers, [{ type: 'error', code: 'unavailable', message: 'The events could not be read just now: retry' }])

  release()
  await locked
  const item = await createItem(app, ada.token)
  t.match(await live.next(5_000), { name: 'item.created', data: { id: item.id } }, 'the hub catches up once the table is readable')
  t.equal(logs.lines.filter((line) => line.msg === 'could not read events; retrying').length, 1, 'the outage is logged once')
  direct.terminate()
})

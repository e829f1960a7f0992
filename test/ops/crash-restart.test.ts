import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { TEST_JWT_SECRET, TEST_PASSWORD, uniqueEmail } from '../helper.js'
import { listening, scratch, startServer } from '../server-process.js'

const serverEnv = (cwd: string) => ({
  JWT_SECRET: TEST_JWT_SECRET,
  DATA_DIR: join(cwd, 'data'),
  // The stream of writes must not be cut short by the rate limit.
  RATE_LIMIT_PER_MINUTE: '1000000',
  RATE_LIMIT_PER_HOUR: '1000000'
})

async function accessToken (base: string): Promise<string> {
  const email = uniqueEmail('crash')
  const signUp = await fetch(`${base}/api/v1/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: TEST_PASSWORD })
  })
  if (signUp.status !== 201) throw new Error(`sign-up failed: ${signUp.status} ${await signUp.text()}`)
  const token = await fetch(`${base}/api/v1/auth/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'password', username: email, password: TEST_PASSWORD })
  })
  if (token.status !== 200) throw new Error(`login failed: ${token.status} ${await token.text()}`)
  return (await token.json() as { access_token: string }).access_token
}

t.test('server on PGlite killed with SIGKILL under writes → a new process on its DATA_DIR listens at once, with every acknowledged item', async (t) => {
  const cwd = await scratch(t)
  const startedAt = Date.now()
  const first = startServer(t, serverEnv(cwd), cwd)
  const base = `http://127.0.0.1:${await listening(first)}`
  const firstStartMs = Date.now() - startedAt
  const headers = { authorization: `Bearer ${await accessToken(base)}`, 'content-type': 'application/json' }

  // Item URLs from the Location of each 201 the client received: what the server acknowledged.
  const acknowledged: string[] = []
  const stop = new AbortController()
  const writer = async (lane: number) => {
    for (let n = 0; !stop.signal.aborted; n++) {
      try {
        const res = await fetch(`${base}/api/v1/items`, { method: 'POST', headers, body: JSON.stringify({ name: `crash ${lane}.${n}`, price: 1 }) })
        const location = res.headers.get('location')
        if (res.status === 201 && location !== null) acknowledged.push(location)
        await res.arrayBuffer()
      } catch {
        return
      }
    }
  }
  const writers = [0, 1, 2, 3].map(writer)
  while (acknowledged.length < 40) await sleep(10)
  first.kill('SIGKILL')
  await first.exited
  stop.abort()
  await Promise.all(writers)
  const written = [...acknowledged]

  const restartedAt = Date.now()
  const second = startServer(t, serverEnv(cwd), cwd)
  const port = await listening(second)
  const restartMs = Date.now() - restartedAt
  t.comment(`first start (with migrations) ${firstStartMs} ms, restart after SIGKILL ${restartMs} ms`)
  // Measured against the first start, which also created and migrated the database, since the shared machine's load sets
  // both; a lock judged by its age refused every start for about 14 s after a crash.
  t.ok(restartMs < firstStartMs + 3_000, `listening about as soon as a first start (${restartMs} ms, first start ${firstStartMs} ms)`)
  const missing: string[] = []
  for (const url of written) {
    const res = await fetch(`http://127.0.0.1:${port}${url}`, { headers })
    if (res.status !== 200) missing.push(`${url} → ${res.status}`)
    await res.arrayBuffer()
  }
  t.same(missing, [], `all ${written.length} acknowledged items are there`)

  const third = startServer(t, serverEnv(cwd), cwd)
  t.equal(await third.exited, 1, 'a second live process is still refused')
  t.match(third.stderr(), /could not start: the embedded database in .* is in use by another process; PGlite serves one process only \(set DATABASE_URL to run several instances\)/)
  second.kill('SIGTERM')
  t.equal(await second.exited, 0)
})

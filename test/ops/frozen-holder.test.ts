import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { TEST_JWT_SECRET } from '../helper.js'
import { listening, scratch, startServer } from '../server-process.js'

t.test('server on PGlite: a live holder that is stopped (SIGSTOP) for longer than the old lock lived keeps its DATA_DIR', async (t) => {
  const cwd = await scratch(t)
  const env = { JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: join(cwd, 'data') }
  const first = startServer(t, env, cwd)
  await listening(first)
  first.kill('SIGSTOP')
  // A lock judged by the age of its last touch goes stale after 15 s of this; a stopped process is still alive.
  await sleep(16_000)
  const second = startServer(t, env, cwd)
  t.notOk(await listening(second).then(() => true, () => false), 'never listens')
  t.equal(await second.exited, 1, 'refused, exit code 1')
  t.match(second.stderr(), /could not start: the embedded database in .* is in use by another process/)
  first.kill('SIGCONT')
  first.kill('SIGTERM')
  t.equal(await first.exited, 0, 'the holder, resumed, still shuts down cleanly')
})

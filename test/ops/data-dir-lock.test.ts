import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { lockDataDir } from '../../src/db/data-dir-lock.js'
import { projectRoot } from '../../src/paths.js'

const TSX = import.meta.resolve('tsx')
const locked = { name: 'DataDirLockedError' }
const HOLDER = join(projectRoot, 'test', 'fixtures', 'lock-holder.ts')

async function lockPath (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'catalog-lock-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'pglite.pid')
}

/** A lock file as another process would have left it. */
const record = (fields: Record<string, unknown>) => JSON.stringify({ pid: process.pid, started: null, host: hostname(), nonce: 'earlier', ...fields })

const holderPid = async (path: string) => (JSON.parse(await readFile(path, 'utf8')) as { pid: number }).pid

/** The pid of a process that has exited: one nothing runs under. */
async function deadPid (): Promise<number> {
  const child = spawn('true')
  await once(child, 'exit')
  return Number(child.pid)
}

/** The pid of a process that runs until the test ends. */
function livePid (t: Test): number {
  const child = spawn('sleep', ['300'])
  t.teardown(() => { child.kill('SIGKILL') })
  return Number(child.pid)
}

interface Holder {
  pid: number
  /** Tells it to take the lock; resolves with what it says: "locked" or "refused". */
  go: () => Promise<string>
  kill: () => Promise<void>
}

/** Starts test/fixtures/lock-holder.ts on `path`; resolves once it waits for the go (SIGUSR1). */
async function startHolder (t: Test, path: string): Promise<Holder> {
  const child = spawn(process.execPath, ['--import', TSX, HOLDER, path], {
    env: { PATH: process.env.PATH ?? '', _TAPJS_PROCESSINFO_COVERAGE_: '0' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const lines: string[] = []
  const waiters: Array<() => void> = []
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    lines.push(...chunk.split('\n').filter(Boolean))
    for (const waiter of waiters.splice(0)) waiter()
  })
  // After its output has been read to the end.
  const exited = once(child, 'close')
  const line = async (index: number): Promise<string> => {
    while (lines[index] === undefined) {
      await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), exited.then(() => { throw new Error('lock holder exited early') })])
    }
    return lines[index]
  }
  t.equal(await line(0), 'ready')
  return {
    pid: Number(child.pid),
    go: () => {
      child.kill('SIGUSR1')
      return line(1)
    },
    kill: async () => {
      child.kill('SIGKILL')
      await exited
    }
  }
}

t.test('lockDataDir: refused while another process holds it; taken at once after that process is killed with SIGKILL', async (t) => {
  const path = await lockPath(t)
  const holder = await startHolder(t, path)
  t.equal(await holder.go(), 'locked')
  await t.rejects(lockDataDir(path), locked)
  t.equal(await holderPid(path), holder.pid, 'the holder keeps its lock')
  await holder.kill()
  const started = Date.now()
  const release = await lockDataDir(path)
  t.ok(Date.now() - started < 1_000, 'without waiting for the lock to age')
  t.equal(await holderPid(path), process.pid)
  await release()
  await t.rejects(readFile(path), { code: 'ENOENT' }, 'released: the file is gone')
})

t.test('lockDataDir: a lock naming a pid that no longer runs is taken over', async (t) => {
  const path = await lockPath(t)
  await writeFile(path, record({ pid: await deadPid() }))
  const release = await lockDataDir(path)
  t.equal(await holderPid(path), process.pid)
  await release()
})

t.test('lockDataDir: a lock naming this process\'s own pid (a previous run, as after a container restart) is taken over', async (t) => {
  const path = await lockPath(t)
  await writeFile(path, record({ pid: process.pid, nonce: 'previous run' }))
  const release = await lockDataDir(path)
  t.match(await readFile(path, 'utf8'), /"pid":\d+/)
  t.notMatch(await readFile(path, 'utf8'), 'previous run')
  await release()
})

t.test('lockDataDir: a lock naming a live process is refused, however long ago it was touched (a stopped or frozen holder)', async (t) => {
  const path = await lockPath(t)
  const pid = livePid(t)
  await writeFile(path, record({ pid }))
  await t.rejects(lockDataDir(path), locked)
  const anHourAgo = new Date(Date.now() - 3_600_000)
  await utimes(path, anHourAgo, anHourAgo)
  await t.rejects(lockDataDir(path), locked, 'a lock judged by its age would have gone stale after 15 s')
  t.equal(await holderPid(path), pid, 'left in place')
})

t.test('lockDataDir: a live pid that started at another time than the holder (a reused pid) is taken over', { skip: process.platform !== 'linux' && 'start times from /proc' }, async (t) => {
  const path = await lockPath(t)
  await writeFile(path, record({ pid: livePid(t), started: '1' }))
  const release = await lockDataDir(path)
  t.equal(await holderPid(path), process.pid)
  await release()
})

t.test('lockDataDir: a lock naming a process that has exited but is not reaped yet (a zombie) is taken over', { skip: process.platform !== 'linux' && 'process states from /proc' }, async (t) => {
  const path = await lockPath(t)
  // The background `sleep` ends once the shell has become `sleep 300`, which never reaps it (a shell that is still a
  // shell when its child ends may reap it).
  const parent = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 300'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { parent.kill('SIGKILL') })
  const [output] = await once(parent.stdout, 'data') as [Buffer]
  const zombie = Number(output.toString().trim())
  while (!(await readFile(`/proc/${zombie}/stat`, 'utf8')).includes(') Z ')) await new Promise((resolve) => setTimeout(resolve, 10))
  await writeFile(path, record({ pid: zombie }))
  const release = await lockDataDir(path)
  t.equal(await holderPid(path), process.pid)
  await release()
})

t.test('lockDataDir: a second lock in the same process while held is refused; free again once released', async (t) => {
  const path = await lockPath(t)
  const release = await lockDataDir(path)
  await t.rejects(lockDataDir(path), locked)
  await t.rejects(Promise.all([lockDataDir(`${path}.other`), lockDataDir(`${path}.other`)]), locked, 'two at once: one wins')
  await release()
  await release()
  const again = await lockDataDir(path)
  t.equal(await holderPid(path), process.pid)
  await again()
})

t.test('lockDataDir: an empty or unparsable lock file is taken over, not a crash', async (t) => {
  const path = await lockPath(t)
  for (const content of ['', '{"pid":', 'null', '[]', '{"pid":"12"}', record({ pid: -1 })]) {
    await writeFile(path, content)
    const release = await lockDataDir(path)
    t.equal(await holderPid(path), process.pid, JSON.stringify(content))
    await release()
  }
})

t.test('lockDataDir: a lock from another host is refused while its holder touches it, taken over once untouched for 15 s', async (t) => {
  const path = await lockPath(t)
  await writeFile(path, record({ host: 'another-host', pid: 1 }))
  await t.rejects(lockDataDir(path), locked)
  const earlier = new Date(Date.now() - 16_000)
  await utimes(path, earlier, earlier)
  const release = await lockDataDir(path)
  t.equal(await holderPid(path), process.pid)
  await release()
})

t.test('lockDataDir: a holder touches its lock every 5 s, so that a starter on another host sees it alive', async (t) => {
  const path = await lockPath(t)
  const release = await lockDataDir(path)
  t.teardown(release)
  const earlier = new Date(Date.now() - 60_000)
  await utimes(path, earlier, earlier)
  await new Promise((resolve) => setTimeout(resolve, 5_500))
  t.ok(Date.now() - (await stat(path)).mtimeMs < 1_000, 'touched within the last second')
})

t.test('lockDataDir: processes starting at once on a stale lock → exactly one holds it, round after round', async (t) => {
  const path = await lockPath(t)
  await writeFile(path, record({ pid: await deadPid() }))
  for (let round = 1; round <= 3; round++) {
    const holders = await Promise.all([1, 2, 3, 4].map(() => startHolder(t, path)))
    const outcomes = await Promise.all(holders.map((holder) => holder.go()))
    t.same(outcomes.toSorted(), ['locked', 'refused', 'refused', 'refused'], `round ${round}`)
    const winner = holders[outcomes.indexOf('locked')]
    t.equal(await holderPid(path), winner?.pid, 'the file names the winner')
    // Killed, the winner leaves a stale lock for the next round.
    await winner?.kill()
  }
  t.same(await readdir(join(path, '..')), ['pglite.pid'], 'no claim or draft files left behind')
})

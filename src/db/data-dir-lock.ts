import { createHash, randomUUID } from 'node:crypto'
import { link, open, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'

/** A live process, this one included, holds the lock. */
export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError'
  constructor (path: string) {
    super(`${path} is held by a running process`)
  }
}

/** What a lock file records: enough to tell, on the same host, whether its holder still runs. */
interface Holder {
  pid: number
  /** The process's start time (Linux, clock ticks since boot): a pid reused by another process does not pass for the holder. */
  started: string | null
  host: string
  /** Makes each lock file's content unique, so a file is never mistaken for its successor. */
  nonce: string
}

/** How often a holder touches its lock file, for starters on another host, which cannot see its process. */
const HEARTBEAT_MS = 5_000
/** A lock from another host untouched for this long is taken for a crashed holder's. */
const FOREIGN_STALE_MS = 15_000
/** A takeover takes milliseconds: a claim this old was left by a starter that died during one. */
const CLAIM_ABANDONED_MS = 10_000
/** Rounds of contention (a holder releasing, another starter taking over) before giving up as if held. */
const ATTEMPTS = 20

/** Locks this process holds or is taking: a second open here is refused, and its own pid in a file is then a previous run's. */
const ours = new Set<string>()

const codeOf = (error: unknown) => (error as NodeJS.ErrnoException).code

/** A process's state and start time from /proc (Linux); undefined where there is none. */
async function procStat (pid: number): Promise<{ state: string, started: string } | undefined> {
  let line
  try {
    line = await readFile(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name (field 2) is parenthesized and may hold spaces or parentheses; state is field 3, starttime 22.
  const fields = line.slice(line.lastIndexOf(')') + 2).split(' ')
  return { state: fields[0] ?? '', started: fields[19] ?? '' }
}

function parseHolder (text: string): Holder | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const { pid, started, host, nonce } = value as Record<string, unknown>
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return undefined
  if ((typeof started !== 'string' && started !== null) || typeof host !== 'string' || typeof nonce !== 'string') return undefined
  return { pid, started, host, nonce }
}

async function holderRuns (holder: Holder | undefined, modifiedMs: number, host: string): Promise<boolean> {
  // Every lock file appears whole (a written file linked into place), so one that does not parse was damaged, e.g. by a
  // power loss before its data reached the disk, and was never a live holder's: waiting on it would only delay the start.
  if (holder === undefined) return false
  if (holder.host !== host) return Date.now() - modifiedMs < FOREIGN_STALE_MS
  // This process does not hold it (see `ours`): a previous run under the same pid wrote it, as after a container restart.
  if (holder.pid === process.pid) return false
  const found = await procStat(holder.pid)
  // A zombie has exited (its parent has not reaped it yet); a different start time means the pid was reused.
  if (found?.state === 'Z') return false
  if (found !== undefined && holder.started !== null && found.started !== holder.started) return false
  try {
    process.kill(holder.pid, 0)
    return true
  } catch (error) {
    // EPERM: it runs, under another user.
    return codeOf(error) === 'EPERM'
  }
}

/** The lock file's content and last touch, read through one descriptor; undefined once it is gone. */
async function readLock (path: string): Promise<{ text: string, modifiedMs: number } | undefined> {
  let handle
  try {
    handle = await open(path, 'r')
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return undefined
    throw error
  }
  try {
    return { text: await handle.readFile('utf8'), modifiedMs: (await handle.stat()).mtimeMs }
  } finally {
    await handle.close()
  }
}

/**
 * Removes the lock file if it still has the stale `text`. Unlinking goes by name, so two starters taking over one stale
 * lock could otherwise remove each other's fresh one: the first to link the claim name (one per stale content) is the
 * only one to unlink, and only once the claim shows the file it linked is still the stale one.
 */
async function removeStale (path: string, text: string): Promise<void> {
  const claim = `${path}.${createHash('sha256').update(text).digest('hex').slice(0, 16)}.takeover`
  try {
    await link(path, claim)
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return
    if (codeOf(error) !== 'EEXIST') throw error
    const age = await stat(claim).then((claimed) => Date.now() - claimed.ctimeMs, () => 0)
    if (age > CLAIM_ABANDONED_MS) await unlink(claim).catch(() => undefined)
    else await sleep(25)
    return
  }
  try {
    if (await readFile(claim, 'utf8') === text) await unlink(path)
  } finally {
    await unlink(claim)
  }
}

/**
 * Takes the lock file at `path` for this process, or throws `DataDirLockedError` while a running process holds it.
 * A lock whose holder is gone (killed, crashed, the machine restarted) is taken over at once; a holder on another host
 * (a shared volume) counts as gone once its file has gone 15 s untouched. Resolves with the release.
 */
export async function lockDataDir (path: string): Promise<() => Promise<void>> {
  if (ours.has(path)) throw new DataDirLockedError(path)
  ours.add(path)
  const me: Holder = { pid: process.pid, started: (await procStat(process.pid))?.started ?? null, host: hostname(), nonce: randomUUID() }
  const draft = `${path}.${me.nonce}`
  try {
    await writeFile(draft, JSON.stringify(me))
    try {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        try {
          // Atomic and exclusive, and the file appears with its content.
          await link(draft, path)
          return holding(path, me.nonce)
        } catch (error) {
          if (codeOf(error) !== 'EEXIST') throw error
        }
        const found = await readLock(path)
        if (found === undefined) continue
        if (await holderRuns(parseHolder(found.text), found.modifiedMs, me.host)) throw new DataDirLockedError(path)
        await removeStale(path, found.text)
      }
      throw new DataDirLockedError(path)
    } finally {
      await unlink(draft)
    }
  } catch (error) {
    ours.delete(path)
    throw error
  }
}

function holding (path: string, nonce: string): () => Promise<void> {
  const heartbeat = setInterval(() => {
    const now = new Date()
    // A missed touch only lets a starter on another host take over sooner; the next one retries.
    utimes(path, now, now).catch(() => undefined)
  }, HEARTBEAT_MS).unref()
  let released: Promise<void> | undefined
  return () => (released ??= (async () => {
    clearInterval(heartbeat)
    try {
      // Only our own file: one that replaced it (we were taken for crashed) is another process's.
      const found = await readLock(path)
      if (found !== undefined && parseHolder(found.text)?.nonce === nonce) await unlink(path)
    } finally {
      ours.delete(path)
    }
  })())
}

import { sql } from 'drizzle-orm'
import type { EventData, EventName } from '../../schemas/events.js'
import { commitSignal, rows, type Db, type Executor } from '../db/client.js'
import { runStatement } from '../db/statements.js'

/** Announces that events were committed. Its payload is empty: readers read the events table, which is the truth. */
export const EVENTS_CHANNEL = 'catalog_events'

/** An event to store with the change it describes. */
export interface NewEvent {
  topic: string
  name: EventName
  data: unknown
}

/** An event as stored: its id, and when it was written (at the end of its transaction). */
export interface StoredEvent {
  id: number
  topic: string
  name: string
  data: unknown
  createdAt: Date
}

/** A typed event: `data` must be what `EVENTS[name]` declares. */
export const newEvent = <N extends EventName>(name: N, topic: string, data: EventData<N>): NewEvent => ({ name, topic, data })

const committed = commitSignal<undefined>()

/** Calls `listener` after each commit on `db` of a transaction that emitted events. */
export const onEventsCommitted = (db: Db, listener: () => void): () => void => committed.listen(db, listener)

/**
 * The statement that stores the events of the JSON array `events` (a parameter), after `change` (a data-modifying
 * statement) when there is one. It first gives the transaction its id (xid) when it has none yet, then draws the event
 * ids: a reader that sees a transaction running knows it may still commit events with lower ids, and waits for it (see
 * `readEvents`). Ids are handed out in the order of the array.
 */
const storing = (events: string, change?: string) => `
  with writer as materialized (select pg_current_xact_id() as xid)${change === undefined ? '' : `, change as (${change} returning 1)`}
  insert into events (topic, name, data)
  select e.value ->> 'topic', e.value ->> 'name', e.value -> 'data'
  from writer, jsonb_array_elements(${events}::jsonb) with ordinality as e(value, n)
  where writer.xid is not null${change === undefined ? '' : ' and exists (select from change)'}
  order by e.n`

const STORE_EVENTS = storing('$1')

/** Wakes what follows the database's events once `executor`'s transaction has committed. */
const announceOnCommit = (executor: Executor) => { committed.emit(executor, undefined) }

/**
 * Stores events in the transaction `tx`, so they exist if and only if the change they describe commits, and ids are
 * handed out in the order they are written.
 */
export async function emit (tx: Executor, events: NewEvent | NewEvent[]): Promise<void> {
  const list = Array.isArray(events) ? events : [events]
  if (list.length === 0) return
  await runStatement(tx, 'events.insert', STORE_EVENTS, [JSON.stringify(list)])
  announceOnCommit(tx)
}

/**
 * One statement that makes a change and stores its events (one round trip, atomic without a transaction of its own):
 * `change` is an INSERT, UPDATE or DELETE whose only parameter is `$1`; the events are `$2` (run it with `emitting`).
 */
export const withEvents = (change: string) => storing('$2', change)

/** Runs a statement of `withEvents` as the prepared statement `name`, with the change's parameter and its events. */
export async function emitting (executor: Executor, name: string, statement: string, value: unknown, events: NewEvent[]): Promise<void> {
  await runStatement(executor, name, statement, [value, JSON.stringify(events)])
  announceOnCommit(executor)
}

interface EventRow { id: number | string, topic: string, name: string, data: unknown, created_at: Date | string }

const toStored = (row: EventRow): StoredEvent => ({
  id: Number(row.id),
  topic: row.topic,
  name: row.name,
  data: row.data,
  createdAt: new Date(row.created_at)
})

/** Running transaction ids of a snapshot, and whether those of an earlier snapshot had all ended by this one. */
export interface EventBatch {
  events: StoredEvent[]
  /** The transactions running when this batch was read: any of them may still commit events with lower ids. */
  running: string[]
  /** Whether every transaction of `waitingFor` had ended (committed or rolled back) when this batch was read. */
  settled: boolean
}

/**
 * The transactions running in the snapshot `s.snapshot` of a query, and whether those of `waitingFor` (running in an
 * earlier one) had all ended (committed or rolled back) by then.
 */
const snapshotState = (waitingFor: string[]) => sql`
  array(select pg_snapshot_xip(s.snapshot)::text) as running,
  (select coalesce(bool_and(pg_visible_in_snapshot(w::xid8, s.snapshot)), true)
    from jsonb_array_elements_text(${JSON.stringify(waitingFor)}::jsonb) as w) as settled`

/**
 * Up to `limit` events after `after`, in id order, with the ids of the transactions running at that moment, in
 * one snapshot. Events become visible in commit order, not id order: an event whose transaction commits late may
 * have a lower id than events already visible. Its transaction is among `running`; once those have all ended
 * (`settled` of a later read that names them in `waitingFor`), every event up to the highest id of this batch is
 * visible, and the reader may move past it.
 */
export async function readEvents (db: Executor, after: number, limit: number, waitingFor: string[]): Promise<EventBatch> {
  const result = await rows<EventRow & { running: string[] | null, settled: boolean | null }>(db, sql`
    select ${snapshotState(waitingFor)}, e.id, e.topic, e.name, e.data, e.created_at
    from (select pg_current_snapshot() as snapshot) as s
    left join lateral (select id, topic, name, data, created_at from events where id > ${after} order by id limit ${limit}) as e on true
    order by e.id`)
  const first = result[0]
  return {
    events: result.filter((row) => row.id !== null).map(toStored),
    running: first?.running ?? [],
    settled: first?.settled ?? true
  }
}

/** What `readEvents` tells of a batch besides its events: how far it reaches, and the transactions as there. */
export interface EventHorizon {
  /** The highest id among the next `limit` events after `after`; `after` when there are none. */
  newest: number
  /** How many events that batch holds: `limit` when there may be more after it. */
  count: number
  running: string[]
  settled: boolean
}

/**
 * `readEvents` without the events themselves, for a reader that then reads only some of the events up to where they
 * are settled (the webhook dispatcher: those some endpoint follows).
 */
export async function readEventHorizon (db: Executor, after: number, limit: number, waitingFor: string[]): Promise<EventHorizon> {
  const [row] = await rows<{ running: string[] | null, settled: boolean | null, newest: number | string | null, count: number | string }>(db, sql`
    select ${snapshotState(waitingFor)}, b.newest, b.count
    from (select pg_current_snapshot() as snapshot) as s,
      lateral (select max(id) as newest, count(*) as count from (select id from events where id > ${after} order by id limit ${limit}) as batch) as b`)
  return { newest: Number(row?.newest ?? after), count: Number(row?.count ?? 0), running: row?.running ?? [], settled: row?.settled ?? true }
}

/** The newest event id, or 0: where a reader starting now begins. */
export async function newestEventId (db: Executor): Promise<number> {
  const [row] = await rows<{ id: number | string | null }>(db, sql`select max(id) as id from events`)
  return Number(row?.id ?? 0)
}

/** A page of a replay, and the newest pruned event id when it was read. */
export interface ReplayPage {
  events: StoredEvent[]
  /** Events up to this id have been pruned: a replay from before it is incomplete. */
  prunedThrough: number
  /** The newest stored event id. */
  newest: number
}

/** Events on `topics` after `after` and at most `upTo`, in id order, up to `limit` of them. */
export async function replayPage (db: Executor, topics: string[], after: number, upTo: number, limit: number): Promise<ReplayPage> {
  const result = await rows<EventRow & { pruned_through: number | string, newest: number | string | null }>(db, sql`
    select (select coalesce(max(pruned_through), 0) from event_log) as pruned_through, (select max(id) from events) as newest,
      e.id, e.topic, e.name, e.data, e.created_at
    from (select 1) as one
    left join lateral (
      select id, topic, name, data, created_at from events
      where id > ${after} and id <= ${upTo} and topic in (select jsonb_array_elements_text(${JSON.stringify(topics)}::jsonb))
      order by id limit ${limit}
    ) as e on true
    order by e.id`)
  const first = result[0]
  return {
    events: result.filter((row) => row.id !== null).map(toStored),
    prunedThrough: Number(first?.pruned_through ?? 0),
    newest: Number(first?.newest ?? 0)
  }
}

const PRUNE_BATCH = 10_000

/**
 * Deletes the events written before `before`, oldest first and a batch per transaction, recording the newest
 * id deleted so a replay from before it is refused. Returns how many were deleted.
 */
export async function pruneEvents (db: Db, before: Date): Promise<number> {
  let deleted = 0
  for (;;) {
    const count = await db.transaction(async (tx) => {
      const [bound] = await rows<{ id: number | string | null }>(tx, sql`
        select max(id) as id from (select id from events where created_at < ${before.toISOString()} order by id limit ${PRUNE_BATCH}) as oldest`)
      if (bound?.id === null || bound?.id === undefined) return 0
      const [removed] = await rows<{ count: number | string }>(tx, sql`
        with removed as (delete from events where id <= ${bound.id} returning 1) select count(*) as count from removed`)
      await tx.execute(sql`
        insert into event_log (id, pruned_through) values (1, ${bound.id})
        on conflict (id) do update set pruned_through = greatest(event_log.pruned_through, excluded.pruned_through)`)
      return Number(removed?.count ?? 0)
    })
    deleted += count
    if (count < PRUNE_BATCH) return deleted
  }
}

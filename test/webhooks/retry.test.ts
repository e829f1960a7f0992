import t from 'tap'
import type { DeliveryResult } from '../../src/webhooks/client.js'
import { classify, DISABLE_AFTER_FAILURES, MAX_ATTEMPTS, retryDelayMs } from '../../src/webhooks/retry.js'

const answered = (status: number, extra: Partial<DeliveryResult> = {}): DeliveryResult =>
  ({ status, durationMs: 12, error: null, retryAfterMs: null, responseBody: '', refused: false, ...extra })
const unanswered = (error: string, refused = false): DeliveryResult =>
  ({ status: null, durationMs: 12, error, retryAfterMs: null, responseBody: null, refused })

t.test('classify → 2xx is delivered', async (t) => {
  for (const status of [200, 201, 202, 204, 299]) t.equal(classify(answered(status)), 'delivered', String(status))
})

t.test('classify → 5xx, 429, 408, timeouts and connection failures are retried', async (t) => {
  for (const status of [500, 502, 503, 504, 599]) t.equal(classify(answered(status)), 'retry', String(status))
  t.equal(classify(answered(429, { retryAfterMs: 7000 })), 'retry')
  t.equal(classify(answered(408)), 'retry')
  for (const error of ['timed out after 10000 ms', 'connection refused', 'connection reset before a response', 'host not found', 'could not connect within 5000 ms']) {
    t.equal(classify(unanswered(error)), 'retry', error)
  }
})

t.test('classify → redirects, other 4xx and other statuses fail without retry', async (t) => {
  for (const status of [100, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 409, 410, 413, 422]) {
    t.equal(classify(answered(status)), 'failed', String(status))
  }
})

t.test('classify → a refused (unsafe) target fails without retry', async (t) => {
  t.equal(classify(unanswered('webhook URLs must not resolve to a loopback, private, link-local or metadata address (127.0.0.1)', true)), 'failed')
})

const never = () => 0
const always = () => 1

t.test('retryDelayMs → between half and all of 30 s·2^(attempt−1) for attempts 1 to 8', async (t) => {
  for (let attempt = 1; attempt <= 8; attempt++) {
    const ceiling = 30_000 * 2 ** (attempt - 1)
    t.equal(retryDelayMs(attempt, null, { random: never }), ceiling / 2, `attempt ${attempt}, shortest`)
    t.equal(retryDelayMs(attempt, null, { random: always }), ceiling, `attempt ${attempt}, longest`)
    const drawn = retryDelayMs(attempt, null)
    t.ok(drawn >= ceiling / 2 && drawn <= ceiling, `attempt ${attempt}, drawn ${drawn}`)
  }
})

t.test('retryDelayMs → whole milliseconds, spread by the random draw', async (t) => {
  t.equal(retryDelayMs(1, null, { random: () => 0.5 }), 22_500)
  t.equal(retryDelayMs(2, null, { baseMs: 1000, random: () => 1 / 3 }), 1333)
})

t.test('retryDelayMs → capped at maxMs (6 h by default) for late attempts', async (t) => {
  const sixHours = 6 * 3_600_000
  t.equal(retryDelayMs(11, null, { random: always }), sixHours)
  t.equal(retryDelayMs(11, null, { random: never }), sixHours / 2)
  t.equal(retryDelayMs(2000, null, { random: always }), sixHours)
  t.equal(retryDelayMs(4, null, { baseMs: 1000, maxMs: 5000, random: always }), 5000)
  t.equal(retryDelayMs(4, null, { baseMs: 1000, maxMs: 5000, random: never }), 2500)
})

t.test('retryDelayMs → never earlier than Retry-After', async (t) => {
  t.equal(retryDelayMs(1, 120_000, { random: always }), 120_000)
  t.equal(retryDelayMs(1, 7000, { random: never }), 15_000, 'the backoff when it is later')
  t.equal(retryDelayMs(8, 60_000, { random: never }), 1_920_000)
  t.equal(retryDelayMs(1, 0, { random: never }), 15_000)
})

t.test('retryDelayMs → Retry-After is capped at maxMs', async (t) => {
  t.equal(retryDelayMs(1, 48 * 3_600_000, { random: never }), 6 * 3_600_000)
  t.equal(retryDelayMs(1, 60_000, { maxMs: 20_000, random: always }), 20_000)
})

t.test('retryDelayMs → attempts count from 1', async (t) => {
  for (const attempt of [0, -1, 1.5, Number.NaN]) t.throws(() => retryDelayMs(attempt, null), RangeError, String(attempt))
})

t.test('retry policy → attempts and the disabling rule', async (t) => {
  t.equal(MAX_ATTEMPTS, 10)
  t.equal(DISABLE_AFTER_FAILURES, 5)
  let longest = 0
  let shortest = 0
  for (let attempt = 1; attempt < MAX_ATTEMPTS; attempt++) {
    longest += retryDelayMs(attempt, null, { random: always })
    shortest += retryDelayMs(attempt, null, { random: never })
  }
  t.equal(longest, 15_330_000, 'the waits add up to 4 h 15.5 min at most')
  t.equal(shortest, 7_665_000, 'and to 2 h 7.75 min at least')
})

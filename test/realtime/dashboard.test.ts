import type { FastifyInstance } from 'fastify'
import type { Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { noBrowser as skip, openPage } from '../browser.js'
import { build, login, signUp, TEST_PASSWORD } from '../helper.js'
import { createItem, FAST_REALTIME, user } from './helpers.js'

/** The dashboard in a fresh browser page, and the errors the page reports (a CSP violation among them). */
async function dashboard (t: Test, app: FastifyInstance): Promise<{ page: Page, problems: string[] }> {
  const { page, problems, status, csp } = await openPage(t, app, '/dashboard')
  t.equal(status, 200)
  t.match(csp, /script-src 'self'/, 'served under the app CSP')
  return { page, problems }
}

async function signIn (page: Page, email: string): Promise<void> {
  await page.fill('#email', email)
  await page.fill('#password', TEST_PASSWORD)
  await page.click('#login button')
  await page.waitForSelector('#connection[data-state="open"]')
}

const text = async (page: Page, selector: string) => (await page.textContent(selector))?.trim()

t.test('the dashboard signs in, shows live events and counters, runs an import with its progress, and reconnects with since', { skip }, async (t) => {
  const app = await build(t, {}, { jobs: { batchSize: 2 }, realtime: FAST_REALTIME })
  const ada = await signUp(app)
  const { page, problems } = await dashboard(t, app)
  await signIn(page, ada.email)
  t.equal(await text(page, '#who'), ada.email)

  const token = await login(app, ada.email)
  const item = await createItem(app, token, { name: 'Teak bench', price: 120 })
  await page.waitForSelector('#feed li:has-text("Teak bench")')
  t.equal(await text(page, '#count-created'), '1')
  t.match(await text(page, '#feed li:first-child'), /^#\d+ item\.created Teak bench \(120\)$/)

  // An import from the page: five rows, one of them bad, two per batch.
  const csv = 'name,description,price,tags\nA,,1,\nB,,2,x|y\nC,,not a price,\nD,,4,\nE,,5,\n'
  await page.setInputFiles('#import-file', { name: 'items.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) })
  await page.click('#import button')
  await page.waitForSelector('#job-status:has-text("Succeeded")')
  t.equal(await text(page, '#job-status'), 'Succeeded: 4 created, 1 failed')
  t.equal(await page.getAttribute('#job-progress', 'value'), '1')
  t.match(await text(page, '#job-errors li'), /^line 4: \/price must be number/)
  const progress = await page.$$eval('#feed li', (items) => items.map((li) => li.textContent ?? '').filter((line) => line.includes('job.updated')))
  t.ok(progress.some((line) => /import running (40|60|80)%/.test(line)), `progress shown as it went: ${progress.join(' | ')}`)
  t.equal(await text(page, '#count-created'), '5')

  // The server drops the socket; an item is created before the page is back.
  for (const client of app.websocketServer.clients) client.terminate()
  const meanwhile = await createItem(app, token, { name: 'Made while away' })
  await page.waitForSelector('#feed li:has-text("Made while away")')
  t.equal(await text(page, '#reconnects'), '1')
  t.equal(await text(page, '#connection'), 'open')
  t.equal(await text(page, '#last-event-id'), (await page.$$eval('#feed li code', (codes) => codes[0]?.textContent ?? '')).split(' ')[0]?.slice(1))
  t.equal(meanwhile.name, 'Made while away')
  t.equal(item.name, 'Teak bench')
  t.same(problems, [], 'no error in the page')
})

t.test('the dashboard refreshes its token when the server closes the socket at expiry', { skip }, async (t) => {
  const app = await build(t, { ACCESS_TOKEN_TTL: '2s' }, { realtime: FAST_REALTIME })
  const ada = await user(app)
  const { page, problems } = await dashboard(t, app)
  await signIn(page, ada.email)
  await page.waitForSelector('#reconnects:text-is("1")', { timeout: 10_000 })
  await page.waitForSelector('#connection[data-state="open"]')
  await createItem(app, await login(app, ada.email), { name: 'After the refresh' })
  await page.waitForSelector('#feed li:has-text("After the refresh")')
  t.pass('live again on a refreshed token')
  t.same(problems, [], 'no error in the page')
})

t.test('a wrong password is shown, and signing out closes the connection', { skip }, async (t) => {
  const app = await build(t, {}, { realtime: FAST_REALTIME })
  const ada = await signUp(app)
  const { page, problems } = await dashboard(t, app)
  await page.fill('#email', ada.email)
  await page.fill('#password', 'not the password')
  await page.click('#login button')
  await page.waitForSelector('#login-error:has-text("incorrect")')
  await signIn(page, ada.email)
  await page.click('#logout')
  await page.waitForSelector('#connection[data-state="closed"]', { state: 'attached' })
  t.ok(await page.isVisible('#sign-in'))
  for (let waited = 0; app.realtime.connections.count('websocket') > 0 && waited < 2_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(app.realtime.connections.count('websocket'), 0)
  t.same(problems.filter((problem) => !problem.includes('status of 400')), [], 'no error in the page but the refused sign-in (400 invalid_grant)')
})

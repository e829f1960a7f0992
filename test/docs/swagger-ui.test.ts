import t from 'tap'
import { noBrowser as skip, openPage } from '../browser.js'
import { build, signUp, TEST_PASSWORD } from '../helper.js'

t.test('Swagger UI in Chromium: Authorize offers the password flow and a bearer token; after logging in, Try it out works', { skip }, async (t) => {
  const app = await build(t)
  const ada = await signUp(app, { fullName: 'Ada Lovelace' })
  const { page, problems, status } = await openPage(t, app, '/docs')
  t.equal(status, 200)
  await page.waitForSelector('.swagger-ui .info')

  await page.click('.btn.authorize')
  const modal = page.locator('.modal-ux')
  await modal.waitFor()
  t.ok(await modal.locator('h4:has-text("OAuth2PasswordBearer")').count(), 'the OAuth2 password flow is offered')
  t.ok(await modal.locator('h4:has-text("BearerJWT")').count(), 'and a bearer token to paste')
  await page.fill('#oauth_username', ada.email)
  await page.fill('#oauth_password', TEST_PASSWORD)
  await modal.locator('.auth-container').filter({ hasText: 'OAuth2PasswordBearer' }).locator('button.authorize').click()
  await modal.locator('button:has-text("Logout")').first().waitFor()
  await page.click('.btn-done')

  const operation = page.locator('#operations-users-getCurrentUser')
  await operation.locator('.opblock-summary').click()
  // "Try it out" is on from the start (tryItOutEnabled): the Execute button is there.
  await operation.locator('.execute').click()
  const status200 = operation.locator('.live-responses-table tbody .response-col_status').first()
  await status200.waitFor()
  t.equal((await status200.textContent())?.trim(), '200')
  t.match(await operation.locator('.live-responses-table .microlight').first().textContent(), ada.email)
  t.same(problems, [], 'no error in the page, no CSP violation')
})

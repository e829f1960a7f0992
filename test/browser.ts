import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser, type Page } from 'playwright-core'
import tap, { type Test } from 'tap'

const CHROMIUM = '/usr/bin/chromium'

/** Why browser tests cannot run here, or false. CI installs Chromium (.ci/run), so there a missing one fails instead. */
export const noBrowser = existsSync(CHROMIUM) || process.env.CI === 'true' ? false : `needs ${CHROMIUM}: apt-get install -y chromium`

let launched: Promise<Browser> | undefined

/** Debian's headless Chromium, through playwright-core; one per test file, closed when the file ends. */
async function browser (): Promise<Browser> {
  if (launched === undefined) {
    const opened = launched = chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update']
    })
    tap.teardown(async () => { await (await opened).close() })
  }
  return await launched
}

/**
 * A page of a listening app in a fresh browser context, at `path`, and the errors the page reports (a Content
 * Security Policy violation among them).
 */
export async function openPage (t: Test, app: FastifyInstance, path: string): Promise<{ page: Page, problems: string[], status: number | undefined, csp: string | undefined }> {
  if (app.server.address() === null) await app.listen({ host: '127.0.0.1', port: 0 })
  const context = await (await browser()).newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  const problems: string[] = []
  page.on('pageerror', (error) => problems.push(error.message))
  page.on('console', (message) => { if (message.type() === 'error') problems.push(message.text()) })
  const response = await page.goto(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}${path}`)
  return { page, problems, status: response?.status(), csp: response?.headers()['content-security-policy'] }
}

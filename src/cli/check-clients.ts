// `npm run clients:check`: generates clients from the committed openapi/openapi.json with @hey-api/openapi-ts (fetch
// client, zod plugin, every response validated) and with orval (fetch client and zod schemas), as the README says to,
// compiles them with a flow of calls each (test/clients/flows/) under strict tsc, and runs the flows against the app
// listening on 127.0.0.1 (embedded PGlite, in memory). Exits non-zero when a generator, the compiler or a flow fails.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { PGlite } from '@electric-sql/pglite'
import { createClient } from '@hey-api/openapi-ts'
import { generate } from 'orval'
import { buildApp } from '../app.js'
import { loadConfig } from '../config.js'
import { PGLITE_START_PARAMS } from '../db/embedded.js'
import { projectRoot } from '../paths.js'

const run = promisify(execFile)
const document = join(projectRoot, 'openapi', 'openapi.json')
const flows = join(projectRoot, 'test', 'clients', 'flows')

// Inside the project, so the generated code finds zod and the compiler finds @types/node.
const scratch = join(projectRoot, 'node_modules', '.cache', 'catalog-api', `clients-${process.pid}`)
const dataDir = await mkdtemp(join(tmpdir(), 'catalog-api-clients-'))
await rm(scratch, { recursive: true, force: true })
await mkdir(scratch, { recursive: true })

const app = await buildApp(loadConfig({
  LOG_LEVEL: 'warn',
  DATA_DIR: dataDir,
  JWT_SECRET: randomBytes(32).toString('hex'),
  RATE_LIMIT_PER_MINUTE: '100000',
  RATE_LIMIT_PER_HOUR: '100000'
}), { database: { pglite: await PGlite.create({ startParams: PGLITE_START_PARAMS }) } })

let failed = false
try {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  await createClient({
    input: document,
    output: { path: join(scratch, 'hey-api'), importFileExtension: '.js' },
    logs: { level: 'silent' },
    // Request validation off: the zod plugin types `format: binary` uploads as strings, so it would refuse the Blobs
    // the generated types ask for. Every response is still parsed by its zod schema.
    plugins: ['@hey-api/client-fetch', 'zod', { name: '@hey-api/sdk', validator: { request: false, response: 'zod' } }]
  })
  await generate({
    input: document,
    output: { target: join(scratch, 'orval', 'client.ts'), client: 'fetch', mode: 'single', baseUrl }
  })
  // A schema per documented status (`createItem201Response`): by default only 200s get one.
  await generate({
    input: document,
    output: { target: join(scratch, 'orval', 'zod.ts'), client: 'zod', mode: 'single', override: { zod: { generateEachHttpStatus: true } } }
  })
  console.log('generated: @hey-api/openapi-ts (fetch, zod) and orval (fetch, zod)')

  for (const flow of ['hey-api.ts', 'orval.ts']) await copyFile(join(flows, flow), join(scratch, flow))
  await writeFile(join(scratch, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2023', 'DOM', 'DOM.Iterable'],
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node']
    },
    include: ['**/*.ts']
  }, null, 2))
  const tsc = join(projectRoot, 'node_modules', '.bin', 'tsc')
  try {
    await run(tsc, ['-p', join(scratch, 'tsconfig.json')], { cwd: scratch })
    console.log('compiled under strict tsc: both clients and their flows')
  } catch (error) {
    const { stdout = '' } = error as { stdout?: string }
    throw new Error(`the generated clients do not compile:\n${stdout}`)
  }

  const hey = await import(join(scratch, 'hey-api.ts')) as { run: (baseUrl: string) => Promise<string> }
  console.log(await hey.run(baseUrl))
  const orval = await import(join(scratch, 'orval.ts')) as { run: (baseUrl: string) => Promise<string> }
  console.log(await orval.run(baseUrl))
} catch (error) {
  console.error(error instanceof Error ? error.message : error)
  failed = true
} finally {
  await app.close()
  await rm(dataDir, { recursive: true, force: true })
  await rm(scratch, { recursive: true, force: true })
}
if (failed) process.exitCode = 1

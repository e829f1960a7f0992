// `npm run openapi` writes openapi/ from the app; `npm run openapi -- --check` fails when openapi/ is stale.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import { PGlite } from '@electric-sql/pglite'
import { buildApp } from '../app.js'
import { loadConfig } from '../config.js'
import { PGLITE_START_PARAMS } from '../db/embedded.js'
import { projectRoot } from '../paths.js'
import { OPENAPI_FILES, openapiDir, renderOpenApi } from './openapi.js'

const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } })

// A fixed environment, so the document does not depend on the shell it is exported from;
// a throwaway data directory and in-memory database, so nothing needs to be set up or is left behind.
const dataDir = await mkdtemp(join(tmpdir(), 'catalog-api-openapi-'))
const stale: string[] = []
try {
  const config = loadConfig({ LOG_LEVEL: 'warn', DATA_DIR: dataDir, JWT_SECRET: randomBytes(32).toString('hex') })
  const app = await buildApp(config, { database: { pglite: await PGlite.create({ startParams: PGLITE_START_PARAMS }) } })
  try {
    await app.ready()
    const files = await renderOpenApi(app)
    if (values.check) {
      for (const name of OPENAPI_FILES) {
        const committed = await readFile(join(openapiDir, name), 'utf8').catch(() => undefined)
        if (committed !== files[name]) stale.push(name)
      }
    } else {
      await mkdir(openapiDir, { recursive: true })
      for (const name of OPENAPI_FILES) await writeFile(join(openapiDir, name), files[name])
      console.log(`wrote ${OPENAPI_FILES.map((name) => relative(projectRoot, join(openapiDir, name))).join(', ')}`)
    }
  } finally {
    await app.close()
  }
} finally {
  await rm(dataDir, { recursive: true, force: true })
}

if (stale.length > 0) {
  console.error(`openapi/ is out of date with the server (${stale.join(', ')}): run npm run openapi and commit the result`)
  process.exitCode = 1
} else if (values.check) {
  console.log('openapi/ matches the served document')
}

import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { projectRoot } from '../../src/paths.js'

const run = promisify(execFile)

/**
 * Runs one of the CLI scripts with tsx and returns its exit code and output. The child records no
 * coverage: tsx-compiled sources do not merge with the test runner's and would skew the report.
 */
async function cli (script: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number, output: string }> {
  const tsx = join(projectRoot, 'node_modules', '.bin', 'tsx')
  try {
    const { stdout, stderr } = await run(tsx, [join('src', 'cli', script), ...args], {
      cwd: projectRoot,
      env: { ...env, _TAPJS_PROCESSINFO_COVERAGE_: '0' },
      timeout: 120_000
    })
    return { code: 0, output: stdout + stderr }
  } catch (error) {
    const { code, stdout = '', stderr = '' } = error as { code?: number, stdout?: string, stderr?: string }
    return { code: code ?? -1, output: stdout + stderr }
  }
}

/**
 * The real schema plus a table no migration creates, written inside the project
 * (drizzle-kit loads it with the project's packages) and removed after the test.
 */
async function schemaWithExtraTable (t: Test): Promise<string> {
  const dir = join(projectRoot, 'node_modules', '.cache', 'catalog-api', `schema-${randomBytes(6).toString('hex')}`)
  await mkdir(dir, { recursive: true })
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'schema.ts')
  await writeFile(file, [
    "import { pgTable, text } from 'drizzle-orm/pg-core'",
    `export * from '${relative(dir, join(projectRoot, 'src', 'db', 'schema.ts'))}'`,
    "export const extras = pgTable('extras', { note: text() })",
    ''
  ].join('\n'))
  return relative(projectRoot, file)
}

t.test('db:check passes: migrations/ matches src/db/schema.ts', async (t) => {
  const { code, output } = await cli('check-migrations.ts')
  t.equal(code, 0, 'exits 0', { output })
  t.match(output, /up to date/)
})

t.test('db:check fails when the schema has a table no migration creates', async (t) => {
  const schema = await schemaWithExtraTable(t)
  const { code, output } = await cli('check-migrations.ts', ['--schema', schema])
  t.equal(code, 1, 'exits 1', { output })
  t.match(output, /npm run db:generate/)
  t.match(output, /CREATE TABLE "extras"/)
})

t.test('db:migrate applies the migrations to an empty embedded database, and again is a no-op', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'catalog-api-migrate-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const { DATABASE_URL: _ignored, ...env } = process.env
  for (const attempt of ['first', 'second']) {
    const { code, output } = await cli('migrate.ts', [], { ...env, DATA_DIR: dataDir, LOG_LEVEL: 'info' })
    t.equal(code, 0, `${attempt} run exits 0`, { output })
    t.match(output, /"driver":"pglite".*migrations applied/)
  }
})

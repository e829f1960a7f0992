// `npm run db:check`: fails when the drizzle schema and the committed migrations disagree.
// drizzle-kit generates into a scratch copy of migrations/; a new migration there means one is missing here.
import { execFile } from 'node:child_process'
import { cp, mkdir, readFile, rm } from 'node:fs/promises'
import { join, relative, resolve } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import drizzleConfig from '../../drizzle.config.js'
import { migrationsFolder, projectRoot } from '../paths.js'

const run = promisify(execFile)
const drizzleKit = join(projectRoot, 'node_modules', '.bin', 'drizzle-kit')

const { values } = parseArgs({ options: { schema: { type: 'string', default: String(drizzleConfig.schema) } } })

/** drizzle-kit prefixes `./` to the paths it is given, so every path passed to it is relative to the project root. */
const fromRoot = (path: string) => relative(projectRoot, resolve(projectRoot, path))

async function drizzle (...args: string[]): Promise<{ ok: boolean, output: string }> {
  try {
    // No stdin: a change drizzle-kit would ask about (a possible rename) fails instead of waiting for an answer.
    const { stdout, stderr } = await run(drizzleKit, args, { cwd: projectRoot, timeout: 120_000, env: { ...process.env, FORCE_COLOR: '0' } })
    return { ok: true, output: stdout + stderr }
  } catch (error) {
    const { stdout = '', stderr = '', message } = error as { stdout?: string, stderr?: string, message: string }
    return { ok: false, output: stdout + stderr || message }
  }
}

const journalEntries = async (folder: string) =>
  (JSON.parse(await readFile(join(folder, 'meta', '_journal.json'), 'utf8')) as { entries: Array<{ tag: string }> }).entries

async function check (): Promise<string | undefined> {
  const consistency = await drizzle('check', '--dialect', drizzleConfig.dialect, '--out', fromRoot(migrationsFolder))
  if (!consistency.ok) return `drizzle-kit check found inconsistent migrations:\n${consistency.output}`

  const scratch = join(projectRoot, 'node_modules', '.cache', 'catalog-api', `migrations-check-${process.pid}`)
  await rm(scratch, { recursive: true, force: true })
  await mkdir(scratch, { recursive: true })
  try {
    await cp(migrationsFolder, scratch, { recursive: true })
    const before = await journalEntries(scratch)
    const generated = await drizzle('generate',
      '--dialect', drizzleConfig.dialect,
      '--schema', fromRoot(values.schema),
      '--casing', drizzleConfig.casing ?? 'camelCase',
      '--out', fromRoot(scratch))
    const added = (await journalEntries(scratch)).slice(before.length)
    if (added.length > 0) {
      const sql = await Promise.all(added.map(async ({ tag }) => `-- ${tag}.sql\n${await readFile(join(scratch, `${tag}.sql`), 'utf8')}`))
      return `${values.schema} has changes that no migration in migrations/ applies: run npm run db:generate and commit the new migration.\n` +
        `It would contain:\n${sql.join('\n')}`
    }
    // drizzle-kit exits 0 on some failures: only its explicit "nothing to migrate" counts as agreement.
    if (!generated.ok || !generated.output.includes('No schema changes')) {
      return `drizzle-kit generate could not compare ${values.schema} with migrations/:\n${generated.output}`
    }
    return undefined
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}

const problem = await check()
if (problem === undefined) {
  console.log(`migrations/ is consistent and up to date with ${values.schema}`)
} else {
  console.error(problem)
  process.exitCode = 1
}

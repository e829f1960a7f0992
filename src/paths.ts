import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The project root (where package.json is), whether running from `src/` or from the compiled `dist/`. */
function findRoot (from: string): string {
  let dir = from
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`package.json not found above ${from}`)
    dir = parent
  }
  return dir
}

export const projectRoot = findRoot(dirname(fileURLToPath(import.meta.url)))
export const migrationsFolder = join(projectRoot, 'migrations')

export const packageInfo = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as {
  name: string
  version: string
  description: string
  /** Who answers for the API: the documents' contact. */
  author: { name: string, email: string }
}

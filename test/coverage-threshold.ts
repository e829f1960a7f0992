// Runs after `npm test` (posttest): tap 21 either demands 100% coverage or allows any; this holds a floor.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { projectRoot } from '../src/paths.js'

/** Percentages the whole suite must reach. Raise them as coverage grows; never lower them to land a change. */
const THRESHOLDS = { lines: 85, statements: 85, branches: 75, functions: 70 } as const

type Metric = keyof typeof THRESHOLDS
const summaryFile = join(projectRoot, '.tap', 'report', 'coverage-summary.json')

const summary = await readFile(summaryFile, 'utf8').then(
  (text) => JSON.parse(text) as { total: Record<Metric, { pct: number }> },
  () => undefined
)
if (summary === undefined) {
  console.error(`coverage: ${summaryFile} is missing; tap's json-summary coverage report (.taprc) must be on`)
  process.exit(1)
}

const below = (Object.keys(THRESHOLDS) as Metric[]).filter((metric) => summary.total[metric].pct < THRESHOLDS[metric])
for (const metric of Object.keys(THRESHOLDS) as Metric[]) {
  const { pct } = summary.total[metric]
  console.log(`coverage: ${metric} ${pct}% (minimum ${THRESHOLDS[metric]}%)${below.includes(metric) ? '  << below the minimum' : ''}`)
}
if (below.length > 0) {
  console.error(`coverage: below the minimum for ${below.join(', ')}`)
  process.exit(1)
}

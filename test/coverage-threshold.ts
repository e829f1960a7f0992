// Runs after `npm test` (posttest): tap 21 either demands 100% coverage or allows any; this holds a floor.
import { readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { projectRoot } from '../src/paths.js'

/** Percentages the whole suite must reach. Raise them as coverage grows; never lower them to land a change. */
const THRESHOLDS = { lines: 90, statements: 90, branches: 80, functions: 85 } as const

type Metric = keyof typeof THRESHOLDS
type Summary = Record<string, Record<Metric, { total: number, pct: number }>>
const summaryFile = join(projectRoot, '.tap', 'report', 'coverage-summary.json')

const summary = await readFile(summaryFile, 'utf8').then((text) => JSON.parse(text) as Summary, () => undefined)
const total = summary?.total
if (summary === undefined || total === undefined) {
  console.error(`coverage: ${summaryFile} is missing; tap's json-summary coverage report (.taprc) must be on`)
  process.exit(1)
}

const metrics = Object.keys(THRESHOLDS) as Metric[]
const below = metrics.filter((metric) => total[metric].pct < THRESHOLDS[metric])
for (const metric of metrics) {
  console.log(`coverage: ${metric} ${total[metric].pct}% (minimum ${THRESHOLDS[metric]}%)${below.includes(metric) ? '  << below the minimum' : ''}`)
}
if (below.length > 0) {
  // A child process started with tsx under tap records coverage of differently compiled sources, and the
  // merge reports whole files as one line: spawn such children with _TAPJS_PROCESSINFO_COVERAGE_=0.
  const collapsed = Object.keys(summary).filter((file) => file !== 'total' && summary[file]?.lines.total === 1)
  if (collapsed.length > 0) {
    console.error(`coverage: these files count as a single line, a sign that a test's child process recorded coverage (give it _TAPJS_PROCESSINFO_COVERAGE_=0): ${collapsed.map((file) => relative(projectRoot, file)).join(', ')}`)
  }
  console.error(`coverage: below the minimum for ${below.join(', ')}`)
  process.exit(1)
}

export interface LogLine { level: number, msg?: string, reqId?: string, err?: Record<string, unknown>, [key: string]: unknown }

/** A pino destination that keeps the lines, for tests that assert on logs (pass `stream` as `logStream`). */
export function logCapture () {
  const raw: string[] = []
  const lines: LogLine[] = []
  return {
    lines,
    stream: {
      write (line: string) {
        raw.push(line)
        lines.push(JSON.parse(line) as LogLine)
      }
    },
    text: () => raw.join('')
  }
}

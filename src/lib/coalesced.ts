/**
 * A task run on request, never two runs at once and starts at least `minIntervalMs` apart: requests made while it runs
 * or waits are answered by one more run, so a stream of requests costs one run per interval, and a request after a
 * quiet spell runs at once. The task must not reject.
 */
export class CoalescedTask {
  private running: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  private startedAt = Number.NEGATIVE_INFINITY
  private again = false
  private stopped = false

  constructor (private readonly task: () => Promise<void>, private readonly minIntervalMs: number) {}

  request (): void {
    if (this.stopped) return
    if (this.running !== undefined || this.timer !== undefined) {
      this.again = true
      return
    }
    const wait = this.startedAt + this.minIntervalMs - performance.now()
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.request()
      }, wait)
      this.timer.unref()
      return
    }
    // This run takes in every request made so far.
    this.again = false
    this.startedAt = performance.now()
    this.running = this.task().finally(() => {
      this.running = undefined
      if (this.again) this.request()
    })
  }

  /** Runs no more; resolves once the run in progress, if any, has ended. */
  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
  }
}

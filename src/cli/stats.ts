/** The nearest-rank percentile `p` (0 to 1) of ascending `sorted` values; NaN when there are none. */
export const percentile = (sorted: number[], p: number): number => sorted[Math.max(0, Math.ceil(sorted.length * p) - 1)] ?? Number.NaN

import { pointer } from './problem.js'

/** Whether any string in `root` holds a NUL: the common answer, no, without building a path. Iterative, like `findNul`. */
function holdsNul (root: unknown): boolean {
  const pending: unknown[] = [root]
  for (let value = pending.pop(); pending.length > 0 || value !== undefined; value = pending.pop()) {
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return true
    } else if (value !== null && typeof value === 'object') {
      for (const key in value) pending.push((value as Record<string, unknown>)[key])
    }
  }
  return false
}

/**
 * Postgres rejects NUL in text, and no field of ours may carry one: report each like a validation error.
 * Iterative, so a deeply nested body cannot overflow the stack.
 */
export function findNul (root: unknown): string[] {
  if (!holdsNul(root)) return []
  const found: string[] = []
  const pending: Array<[unknown, string]> = [[root, '']]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [value, path] = next
    if (typeof value === 'string') {
      if (value.includes('\u0000')) found.push(path)
    } else if (value !== null && typeof value === 'object') {
      // Arrays too: their keys are the indexes. Pushed in reverse, so paths come out in document order.
      for (const [key, child] of Object.entries(value).reverse()) pending.push([child, path + pointer(key)])
    }
  }
  return found
}

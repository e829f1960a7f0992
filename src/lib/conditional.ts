/** RFC 9110 §13.1 conditional request headers, compared against one current entity tag. */

interface EntityTag {
  weak: boolean
  /** The quoted opaque tag, quotes included. */
  opaque: string
}

/** `*`, or the entity tags of a comma-separated list; malformed members are skipped, as they cannot match. */
function parseEntityTags (header: string): '*' | EntityTag[] {
  if (header.trim() === '*') return '*'
  return [...header.matchAll(/(W\/)?("[^"]*")/g)].map((match) => ({ weak: match[1] !== undefined, opaque: match[2] ?? '' }))
}

/** `If-Match` holds: absent, `*` (the resource exists), or one member equal to `etag` by strong comparison. */
export function ifMatchHolds (header: string | undefined, etag: string): boolean {
  if (header === undefined) return true
  const tags = parseEntityTags(header)
  return tags === '*' || tags.some((tag) => !tag.weak && tag.opaque === etag)
}

/** `If-None-Match` fails (answer 304 on GET): `*`, or one member equal to `etag` by weak comparison. */
export function ifNoneMatchFails (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  const tags = parseEntityTags(header)
  const opaque = etag.replace(/^W\//, '')
  return tags === '*' || tags.some((tag) => tag.opaque === opaque)
}

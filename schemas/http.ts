import { Type, type TSchema } from '@sinclair/typebox'
import { Ref } from './common.js'

/** A JSON response body. */
export const json = <T>(schema: T) => ({ 'application/json': { schema } })

const text = (maxLength: number, description: string) => ({ type: 'string', maxLength, description }) as const

/** The `Cache-Control` response header, with what this response sets. */
export const cacheControlHeader = (value: string) => ({ 'Cache-Control': text(200, `\`${value}\``) })

/** The 200 of a collection: a page (`Page(...)`) and the `Link` to the next one. */
export const pageResponse = <T extends TSchema>(description: string, page: T) => ({
  description,
  headers: { Link: text(4000, 'RFC 8288 link to the next page (`rel="next"`), when there is one') },
  content: json(Ref(page))
})

/** A list of entity tags, as `If-Match` and `If-None-Match` carry. */
const entityTags = (description: string, example: string) =>
  Type.Optional(Type.String({ minLength: 1, maxLength: 2000, description, examples: [example] }))

interface EntityOptions {
  /** Whether the entity is changed with conditional writes (`If-Match`), not only read conditionally. */
  writable?: boolean
  /** What the tag is, when it is not derived from the entity's version (an image's bytes). */
  etag?: string
}

/** The conditional requests on one kind of entity and the responses that carry its `ETag`, so every resource documents them alike. */
export function entityHeaders (entity: string, example: string, options: EntityOptions = {}) {
  const sendIn = options.writable === true ? '`If-Match` or `If-None-Match`' : '`If-None-Match`'
  const ETag = { ETag: text(200, options.etag ?? `Strong entity tag of this version of the ${entity}; send it in ${sendIn}`) }
  return {
    /** The `ETag` header alone, for a response documented by hand. */
    etag: ETag,
    /** Request headers of a conditional write. */
    ifMatch: Type.Object({
      'If-Match': entityTags(`Change only if the ${entity}'s current \`ETag\` is one of these (strong comparison), or \`*\` for any; otherwise 412`, example)
    }),
    /** Request headers of a conditional read. */
    ifNoneMatch: Type.Object({
      'If-None-Match': entityTags(`Answer 304 without a body when the ${entity}'s current \`ETag\` is one of these (weak comparison), or for \`*\``, example)
    }),
    /** A response carrying the entity, with its `ETag` and any `headers` of its own. */
    ok: <T extends TSchema>(description: string, schema: T, headers: Record<string, unknown> = {}) =>
      ({ description, headers: { ...ETag, ...headers }, content: json(Ref(schema)) }),
    /** The answer to a new entity (201, or 202 for work that goes on): where it is, and its `ETag`. */
    created: <T extends TSchema>(description: string, schema: T) =>
      ({ description, headers: { Location: text(2000, `The URL of the new ${entity}`), ...ETag }, content: json(Ref(schema)) }),
    /** The 304 of a conditional read: no body, and the headers the 200 would have carried. */
    notModified: (headers: Record<string, unknown> = {}) =>
      ({ type: 'null', description: 'Not modified: `If-None-Match` holds the current `ETag`', headers: { ...ETag, ...headers } }) as const
  }
}

/** A response without a body. */
export const noContent = (description: string) => ({ type: 'null', description }) as const

import { Type, type Static, type TSchema, type TObject, type TProperties, type ObjectOptions, type SchemaOptions, type StringOptions } from '@sinclair/typebox'

/**
 * An object that rejects properties it does not declare. `maxProperties` says the same in a form validators check
 * first: a body of a million unknown keys is refused for its size, not reported key by key.
 */
export const StrictObject = <T extends TProperties>(properties: T, options: ObjectOptions = {}) =>
  Type.Object(properties, { additionalProperties: false, maxProperties: Object.keys(properties).length, ...options })

/**
 * A schema that also accepts null. Scalars become one `type: [T, "null"]`, so a wrong value is
 * reported once rather than once per `anyOf` branch; other schemas use `anyOf`.
 */
export const Nullable = <T extends TSchema>(schema: T) =>
  typeof schema.type === 'string' && !['object', 'array'].includes(schema.type)
    ? Type.Unsafe<Static<T> | null>({ ...schema, type: [schema.type, 'null'] })
    : Type.Unsafe<Static<T> | null>(Type.Union([schema, Type.Null()]))

/**
 * A property with a `default`: optional on the wire (generated clients may leave it out), yet always present once
 * validated, since the validator fills in the default: typed as present.
 */
export const Defaulted = <T extends TSchema>(schema: T): T => {
  if (schema.default === undefined) throw new Error('Defaulted() needs a schema with a default')
  return Type.Optional(schema) as unknown as T
}

/** A reference to a named component schema (one registered with `addSchema`), typed as the schema itself. */
export const Ref = <T extends TSchema>(schema: T, options: SchemaOptions = {}) => {
  if (schema.$id === undefined) throw new Error('Ref() needs a schema with an $id')
  return Type.Unsafe<Static<T>>(Type.Ref(schema.$id, options))
}

/** A string enum emitted as a plain `enum` (code generators dislike `anyOf` of constants). */
export const StringEnum = <const T extends readonly string[]>(values: T, options: StringOptions = {}) =>
  Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] })

export const Uuid = (options: StringOptions = {}) =>
  Type.String({ format: 'uuid', maxLength: 36, ...options })

export const DateTime = (options: StringOptions = {}) =>
  Type.String({ format: 'date-time', maxLength: 35, ...options })

export const Email = (options: StringOptions = {}) =>
  Type.String({ format: 'email', minLength: 3, maxLength: 254, ...options })

export const IdParamsSchema = StrictObject({ id: Uuid({ description: 'The resource id' }) })

/** The longest `path` and `message` of a validation issue: a longer one (a key of 100 KB) is cut. */
export const MAX_ISSUE_TEXT = 1000

export const ValidationIssueSchema = StrictObject({
  in: StringEnum(['body', 'query', 'path', 'header'] as const, { description: 'Which part of the request failed' }),
  path: Type.String({ maxLength: MAX_ISSUE_TEXT, description: 'JSON pointer to the failing field within that part (cut short past 1000 characters)', examples: ['/price'] }),
  message: Type.String({ maxLength: MAX_ISSUE_TEXT, examples: ['must be >= 0'] })
}, { $id: 'ValidationIssue', title: 'ValidationIssue' })

/** How many failing fields a problem lists at most; `errorCount` says how many there were. */
export const MAX_LISTED_ERRORS = 100

/** The longest `detail` and `instance` of a problem: longer ones (a request path of 16 KB) are cut. */
export const MAX_PROBLEM_TEXT = 2000

export const ProblemSchema = StrictObject({
  type: Type.String({ maxLength: 200, description: 'A URI reference identifying the problem type', examples: ['urn:catalog-api:problem:validation-error'] }),
  title: Type.String({ maxLength: 200, description: 'A short, human-readable summary of the problem type' }),
  status: Type.Integer({ minimum: 100, maximum: 599 }),
  detail: Type.String({ maxLength: MAX_PROBLEM_TEXT, description: 'A human-readable explanation specific to this occurrence' }),
  instance: Type.String({ maxLength: MAX_PROBLEM_TEXT, description: 'The request path this problem occurred on (cut short past 2000 characters)' }),
  errors: Type.Optional(Type.Array(Ref(ValidationIssueSchema), {
    maxItems: MAX_LISTED_ERRORS,
    description: `The failing fields, for validation problems: every one, or the first ${MAX_LISTED_ERRORS} when there are more`
  })),
  errorCount: Type.Optional(Type.Integer({ minimum: 1, description: 'How many failing fields were found, listed or not (validation problems)' }))
}, {
  $id: 'Problem',
  title: 'Problem',
  description: 'An RFC 9457 problem details object, served as `application/problem+json`.',
  examples: [{
    type: 'urn:catalog-api:problem:validation-error',
    title: 'Bad Request',
    status: 400,
    detail: 'The request body is invalid',
    instance: '/api/v1/users',
    errors: [{ in: 'body', path: '/email', message: 'must match format "email"' }],
    errorCount: 1
  }]
})

export type Problem = Static<typeof ProblemSchema>
export type ValidationIssue = Static<typeof ValidationIssueSchema>

/** A page of a collection: `Page(ItemSchema)` is the `ItemPage` component. */
export const Page = <T extends TObject>(item: T) =>
  StrictObject({
    data: Type.Array(Ref(item), { maxItems: 100 }),
    nextCursor: Nullable(Type.String({ maxLength: 2000, description: 'Pass as `cursor`, with the same filters and sort, for the next page; null on the last page' }))
  }, { $id: `${item.$id ?? ''}Page`, title: `${item.$id ?? ''}Page` })

export const PaginationQuery = {
  limit: Defaulted(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Page size' })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 2000, description: 'The `nextCursor` of the previous page' }))
}

/** Shared components every app registers. */
export const commonComponents = [ValidationIssueSchema, ProblemSchema]

const STATUS_DESCRIPTIONS: Record<number, string> = {
  400: 'The request is invalid: every failing field is listed in `errors`',
  401: 'The access token is missing, invalid or expired',
  403: 'The access token lacks a required scope, or the resource belongs to someone else',
  404: 'No such resource',
  405: 'The method is not allowed on this path',
  409: 'The request conflicts with the current state',
  412: 'The `If-Match` precondition failed',
  413: 'The request body is too large',
  415: 'The request body media type is not supported by this operation',
  422: 'The request cannot be processed',
  429: 'Too many requests: retry after `Retry-After` seconds',
  500: 'An unexpected error occurred',
  503: 'The service is unavailable (shutting down, overloaded or its database is unreachable)'
}

/** What a problem of each status says, for its example. */
const EXAMPLES: Record<number, { title: string, code: string, detail: string, errors?: ValidationIssue[] }> = {
  400: { title: 'Bad Request', code: 'validation-error', detail: 'The request body is invalid', errors: [{ in: 'body', path: '/price', message: 'must be <= 1000000000' }] },
  401: { title: 'Unauthorized', code: 'invalid-token', detail: 'The access token has expired' },
  403: { title: 'Forbidden', code: 'insufficient-scope', detail: 'This operation needs the scope items:write' },
  404: { title: 'Not Found', code: 'not-found', detail: 'No item has this id' },
  409: { title: 'Conflict', code: 'edit-conflict', detail: 'The item is changing too often to apply this change: retry' },
  412: { title: 'Precondition Failed', code: 'precondition-failed', detail: 'The item has changed since the version named in If-Match: fetch it again' },
  413: { title: 'Payload Too Large', code: 'payload-too-large', detail: 'Request body is too large' },
  415: { title: 'Unsupported Media Type', code: 'unsupported-media-type', detail: 'This operation accepts application/json, not text/plain' },
  422: { title: 'Unprocessable Entity', code: 'idempotency-key-reused', detail: 'This Idempotency-Key was used with another request' },
  429: { title: 'Too Many Requests', code: 'rate-limited', detail: 'Too many requests: retry in 42 seconds' },
  500: { title: 'Internal Server Error', code: 'internal-error', detail: 'An unexpected error occurred; the request id identifies it in the server log' },
  503: { title: 'Service Unavailable', code: 'service-unavailable', detail: 'The server is shutting down' }
}

/** An example problem of `status`, as the server writes one. */
export function problemExample (status: number): Problem {
  const { title = 'Error', code = 'error', detail = STATUS_DESCRIPTIONS[status] ?? 'Error', errors } = EXAMPLES[status] ?? {}
  return {
    type: `urn:catalog-api:problem:${code}`,
    title,
    status,
    detail,
    instance: '/api/v1/items/0196f1c2-7a8b-7cde-8f01-23456789abcd',
    ...(errors === undefined ? {} : { errors, errorCount: errors.length })
  }
}

/** A response documented as a `Problem`, served as `application/problem+json`, with an example of its own status. */
export const problemResponse = (status: number, description = STATUS_DESCRIPTIONS[status] ?? 'Error', example: Problem = problemExample(status)) => ({
  description,
  content: { 'application/problem+json': { schema: Ref(ProblemSchema), example } }
})

/** The documented error responses of an operation, e.g. `...problems(401, 403, 404)`. */
export const problems = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, problemResponse(status)])) as Record<number, ReturnType<typeof problemResponse>>

export const OAUTH2_SCHEME = 'OAuth2PasswordBearer'
/** The same access tokens, pasted: for tools that cannot run the password flow (Postman, Portman). */
export const BEARER_SCHEME = 'BearerJWT'

/** Where the resources of this version of the API are served. */
export const API_PREFIX = '/api/v1'

/** An OAuth2 scope a resource declares. */
export interface ScopeDeclaration {
  description: string
  /** Granted to a password grant that asks for no scope. */
  byDefault?: boolean
  /** Only ever granted to superusers, and only when asked for. */
  superuserOnly?: boolean
}

/**
 * What a resource contributes to the contract besides its routes' schema objects: its tag in the documents, the named
 * component schemas its routes refer to, and the scopes its routes require.
 */
export interface ResourceContract {
  tag: { name: string, description: string }
  components: TSchema[]
  scopes?: Record<string, ScopeDeclaration>
}

export const defineResource = <const C extends ResourceContract>(contract: C): C => contract

/**
 * The `security` of an operation: each argument is one way to be allowed, listing the scopes it needs.
 * `requires(['items:write'], ['admin'])` means "items:write, or admin". No argument means public. The same tokens
 * may also be pasted as a bearer token (a scheme without scopes of its own: the token's scopes still apply).
 * Every scope named must be declared by a registered resource (the app refuses to start otherwise).
 */
export const requires = (...alternatives: string[][]): Array<Record<string, string[]>> =>
  alternatives.length === 0 ? [] : [...alternatives.map((scopes) => ({ [OAUTH2_SCHEME]: scopes })), { [BEARER_SCHEME]: [] }]

/** The `security` of an operation open to anyone that a token, when sent, may see more of. */
export const signedInOrAnonymous: Array<Record<string, string[]>> = [{}, ...requires([])]

// A typed client of catalog-api: openapi-fetch over the types openapi-typescript generated into openapi/schema.d.ts.
// Every path, parameter, body and response below is checked by the compiler against the API's own document.
//
//   npx tsx examples/client.ts http://127.0.0.1:3000
//
// signs up a user, logs in, then creates, lists, changes, reads and deletes items, uploads an image, and imports a CSV.
import createClient, { type Middleware } from 'openapi-fetch'
import type { components, paths } from '../openapi/schema.js'

type Item = components['schemas']['Item']
type Job = components['schemas']['Job']

/** A 1×1 PNG, for the image upload. */
const PIXEL = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z/C/HgAGgwJ/lK3Q6wAAAABJRU5ErkJggg==', 'base64')

/** Throws with the problem's detail when a call did not succeed. */
function ok<T> (result: { data?: T, error?: unknown, response: Response }, what: string): T {
  if (result.error !== undefined || result.data === undefined) {
    const detail = result.error as { detail?: string, error_description?: string } | undefined
    throw new Error(`${what}: ${result.response.status} ${detail?.detail ?? detail?.error_description ?? ''}`)
  }
  return result.data
}

/** The multipart body of an upload: one part, `file` (a Blob in the generated types). */
const asForm = (name: string) => (body: { file: Blob }): FormData => {
  const form = new FormData()
  form.append('file', body.file, name)
  return form
}

export interface Walkthrough {
  user: components['schemas']['User']
  created: Item
  pages: number
  patched: Item
  notModified: boolean
  withImage: Item
  job: Job
}

/** The whole tour; returns what it saw, for the test that runs it. */
export async function walkthrough (baseUrl: string, email = `ada-${Date.now()}@example.com`): Promise<Walkthrough> {
  const api = createClient<paths>({ baseUrl })
  const password = 'correct horse battery staple'

  const user = ok(await api.POST('/api/v1/users', { body: { email, password, fullName: 'Ada Lovelace' } }), 'sign up')
  // The token endpoint takes a form, as OAuth2 says.
  const tokens = ok(await api.POST('/api/v1/auth/token', {
    body: { grant_type: 'password', username: email, password },
    bodySerializer: (body) => new URLSearchParams(body as Record<string, string>),
    headers: { 'content-type': 'application/x-www-form-urlencoded' }
  }), 'log in')
  const auth: Middleware = {
    onRequest ({ request }) {
      request.headers.set('authorization', `Bearer ${tokens.access_token}`)
      return request
    }
  }
  api.use(auth)

  const created = ok(await api.POST('/api/v1/items', {
    body: { name: 'Walnut desk', description: 'Solid walnut', price: 249.99, tags: ['furniture'] },
    headers: { 'Idempotency-Key': `create-${email}` }
  }), 'create')
  for (const name of ['Oak shelf', 'Teak bench', 'Pine stool']) {
    ok(await api.POST('/api/v1/items', { body: { name, price: 19.99, tags: ['furniture'] } }), `create ${name}`)
  }

  // Every page of the caller's items, two at a time, following nextCursor with the same filters.
  let pages = 0
  let cursor: string | undefined
  do {
    const page = ok(await api.GET('/api/v1/items', { params: { query: { ownerId: user.id, tag: ['furniture'], limit: 2, cursor } } }), 'list')
    pages++
    cursor = page.nextCursor ?? undefined
  } while (cursor !== undefined)

  // A change guarded by the version read: If-Match carries its ETag.
  const read = await api.GET('/api/v1/items/{id}', { params: { path: { id: created.id } } })
  const patch = await api.PATCH('/api/v1/items/{id}', {
    params: { path: { id: created.id }, header: { 'If-Match': read.response.headers.get('etag') ?? '' } },
    body: { price: 199.99 }
  })
  const patched = ok(patch, 'patch')

  // A conditional GET with the ETag the change answered: 304, no body.
  const again = await api.GET('/api/v1/items/{id}', {
    params: { path: { id: created.id }, header: { 'If-None-Match': patch.response.headers.get('etag') ?? '' } }
  })
  const notModified = again.response.status === 304

  const withImage = ok(await api.PUT('/api/v1/items/{id}/image', {
    params: { path: { id: created.id } },
    body: { file: new Blob([PIXEL], { type: 'image/png' }) },
    bodySerializer: asForm('pixel.png')
  }), 'upload image')

  const csv = 'name,description,price,tags\nChair,,49.5,furniture\nBroken,,not a price,\n'
  const queued = ok(await api.POST('/api/v1/items/import', {
    body: { file: new Blob([csv], { type: 'text/csv' }) },
    bodySerializer: asForm('items.csv')
  }), 'import')
  let job = queued
  for (let attempt = 0; attempt < 200 && (job.status === 'queued' || job.status === 'running'); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    job = ok(await api.GET('/api/v1/jobs/{id}', { params: { path: { id: queued.id } } }), 'poll job')
  }

  const deleted = await api.DELETE('/api/v1/items/{id}', { params: { path: { id: created.id }, header: { 'If-Match': `"${withImage.id}.${withImage.version}"` } } })
  if (deleted.response.status !== 204) throw new Error(`delete: ${deleted.response.status}`)

  return { user, created, pages, patched, notModified, withImage, job }
}

// Run as a script: `npx tsx examples/client.ts <base URL>`.
if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const result = await walkthrough(process.argv[2] ?? 'http://127.0.0.1:3000')
  console.log(`signed up ${result.user.email}; created ${result.created.name}; listed ${result.pages} pages; ` +
    `patched to ${result.patched.price}; 304: ${String(result.notModified)}; image ${result.withImage.imageUrl ?? 'none'}; ` +
    `import ${result.job.status}: ${result.job.result?.created ?? 0} created, ${result.job.result?.failed ?? 0} failed`)
}

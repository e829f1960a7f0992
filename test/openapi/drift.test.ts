import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { OPENAPI_FILES, openapiDir, renderOpenApi } from '../../src/cli/openapi.js'
import { build } from '../helper.js'

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const

interface Operation {
  operationId?: string
  tags?: string[]
  summary?: string
  description?: string
  security?: unknown[]
  parameters?: Array<{ name: string, in: string, required?: boolean, schema?: { default?: unknown } }>
  responses?: Record<string, { content?: unknown }>
}

interface Document {
  tags?: Array<{ name: string }>
  paths: Record<string, Partial<Record<typeof METHODS[number], Operation>>>
  components?: { schemas?: Record<string, unknown> }
}

/** The first line that differs, to show what changed without printing whole documents. */
function firstDifference (committed: string, served: string): { line: number, committed?: string, served?: string } {
  const a = committed.split('\n')
  const b = served.split('\n')
  let line = 0
  while (line < a.length && a[line] === b[line]) line++
  return { line: line + 1, committed: a[line], served: b[line] }
}

t.test('the committed openapi/ matches what the server serves', async (t) => {
  const app = await build(t)
  const rendered = await renderOpenApi(app)
  for (const name of OPENAPI_FILES) {
    const committed = await readFile(join(openapiDir, name), 'utf8').catch(() => undefined)
    if (committed === rendered[name]) {
      t.pass(`openapi/${name} is up to date`)
    } else {
      t.fail(`openapi/${name} differs from what the server serves: run npm run openapi and commit the result`, {
        firstDifference: committed === undefined ? 'the file is missing' : firstDifference(committed, rendered[name])
      })
    }
  }
})

t.test('every operation is fully documented', async (t) => {
  const app = await build(t)
  const document = (await app.inject({ url: '/openapi.json' })).json<Document>()
  const declaredTags = new Set((document.tags ?? []).map((tag) => tag.name))
  const operationIds = new Map<string, string>()

  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method]
      if (operation === undefined) continue
      const where = `${method.toUpperCase()} ${path}`
      const id = operation.operationId
      if (id === undefined) {
        t.fail(`${where} has no operationId`)
      } else {
        t.match(id, /^[a-z][a-zA-Z0-9]*$/, `${where}: operationId "${id}" is camelCase`)
        t.notOk(operationIds.has(id), `${where}: operationId "${id}" is not also used by ${operationIds.get(id) ?? 'another operation'}`)
        operationIds.set(id, where)
      }
      t.ok(operation.tags !== undefined && operation.tags.length > 0, `${where} has tags`)
      for (const tag of operation.tags ?? []) t.ok(declaredTags.has(tag), `${where}: tag "${tag}" is declared in the document's tags`)
      t.ok(operation.summary?.trim(), `${where} has a summary`)
      t.ok(operation.description?.trim(), `${where} has a description`)
      t.ok(Array.isArray(operation.security), `${where} states its security ([] when public)`)
      t.ok(Object.keys(operation.responses ?? {}).some((status) => /^4(\d\d|XX)$/.test(status)), `${where} documents a 4xx response`)
      for (const parameter of operation.parameters ?? []) {
        // Generators make a required parameter mandatory in every call, even one the server defaults.
        if (parameter.schema?.default !== undefined) t.notOk(parameter.required, `${where}: ${parameter.name} has a default, so it is optional`)
      }
      const notModified = operation.responses?.['304']
      if (notModified !== undefined) {
        t.equal(notModified.content, undefined, `${where}: its 304 has no body`)
        t.ok(operation.parameters?.some((parameter) => parameter.in === 'header' && parameter.name === 'If-None-Match'), `${where}: a 304 needs If-None-Match to be sent`)
      }
    }
  }
  t.ok(operationIds.size > 0, 'the document has operations')

  const anonymous = Object.keys(document.components?.schemas ?? {}).filter((name) => /^def-\d+$/.test(name))
  t.same(anonymous, [], 'every component schema is named by its $id (none is def-N)')
})

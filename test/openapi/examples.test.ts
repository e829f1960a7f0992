import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import t, { type Test } from 'tap'
import { build } from '../helper.js'

interface Media { schema?: unknown, example?: unknown, examples?: Record<string, { value?: unknown }> }
interface Document {
  paths: Record<string, Record<string, { operationId: string, responses: Record<string, { content?: Record<string, Media> }> }>>
  components: { schemas: Record<string, { examples?: unknown[] }> }
}

const app = await build(t)
const document = app.swagger() as unknown as Document
// A standard validator at its defaults; strict schema mode off, since OpenAPI's own keywords are not JSON Schema's.
const ajv = new Ajv2020({ allErrors: true, strict: false })
addFormats.default(ajv)
ajv.addSchema(document as object, 'openapi')
const segment = (text: string) => text.replaceAll('~', '~0').replaceAll('/', '~1')

function check (t: Test, pointer: string, example: unknown, where: string) {
  const validate = ajv.compile({ $ref: `openapi#${pointer}` })
  t.ok(validate(example), `${where} ${JSON.stringify(validate.errors ?? [])}`)
}

t.test('every example of a component schema validates against that schema', async (t) => {
  let count = 0
  for (const [name, schema] of Object.entries(document.components.schemas)) {
    for (const [index, example] of (schema.examples ?? []).entries()) {
      check(t, `/components/schemas/${segment(name)}`, example, `${name} example ${index}`)
      count++
    }
  }
  t.ok(count >= 15, `${count} component examples`)
})

t.test('every response example validates against its schema, and an error\'s example is of its own status', async (t) => {
  let count = 0
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        for (const [type, media] of Object.entries(response.content ?? {})) {
          const examples = [...(media.example === undefined ? [] : [media.example]), ...Object.values(media.examples ?? {}).map((example) => example.value)]
          const pointer = `/paths/${segment(path)}/${method}/responses/${status}/content/${segment(type)}/schema`
          for (const example of examples) {
            check(t, pointer, example, `${operation.operationId} ${status} ${type}`)
            count++
          }
          if (Number(status) >= 400 && type === 'application/problem+json') {
            t.equal((media.example as { status?: number } | undefined)?.status, Number(status), `${operation.operationId} ${status}: the example is a ${status}`)
          }
        }
      }
    }
  }
  t.ok(count > 100, `${count} response examples`)
})

import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript'
import ts from 'typescript'
import { projectRoot } from '../paths.js'

/** Where the exported document and the generated client types are committed. */
export const openapiDir = join(projectRoot, 'openapi')

export const OPENAPI_FILES = ['openapi.json', 'openapi.yaml', 'schema.d.ts', 'asyncapi.json'] as const
export type OpenApiFile = typeof OPENAPI_FILES[number]

async function served (app: FastifyInstance, url: string): Promise<string> {
  const response = await app.inject({ url })
  if (response.statusCode !== 200) throw new Error(`GET ${url} answered ${response.statusCode}: ${response.body}`)
  return response.body
}

/**
 * The contents of `openapi/`: the document exactly as the app serves it (the JSON pretty-printed),
 * the client types `openapi-typescript` generates from it, and the AsyncAPI document of the WebSocket channel.
 */
export async function renderOpenApi (app: FastifyInstance): Promise<Record<OpenApiFile, string>> {
  const document: unknown = JSON.parse(await served(app, '/openapi.json'))
  const yaml = await served(app, '/openapi.yaml')
  // A copy: openapi-typescript adds to the document it is given. Files (`format: binary`) are Blobs, as a client
  // sends them in a FormData and receives them with `parseAs: 'blob'` (openapi-typescript's own recipe).
  const types = astToString(await openapiTS(structuredClone(document) as Parameters<typeof openapiTS>[0], {
    transform: (schema) => schema.format === 'binary' ? ts.factory.createTypeReferenceNode('Blob') : undefined
  }))
  const asyncapi: unknown = JSON.parse(await served(app, '/asyncapi.json'))
  return {
    'openapi.json': JSON.stringify(document, null, 2) + '\n',
    'openapi.yaml': yaml.endsWith('\n') ? yaml : yaml + '\n',
    'schema.d.ts': COMMENT_HEADER + types,
    'asyncapi.json': JSON.stringify(asyncapi, null, 2) + '\n'
  }
}

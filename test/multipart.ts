import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { projectRoot } from '../src/paths.js'

export interface Part {
  name: string
  /** A file part when `filename` is given, else a plain field. */
  value: Uint8Array | string
  filename?: string
  type?: string
}

/** A `multipart/form-data` body and its content type, encoded by the platform's FormData. */
export async function multipartBody (parts: Part[]): Promise<{ payload: Buffer, headers: Record<string, string> }> {
  const form = new FormData()
  for (const part of parts) {
    if (part.filename === undefined) form.append(part.name, typeof part.value === 'string' ? part.value : Buffer.from(part.value).toString())
    else form.append(part.name, new Blob([part.value], { type: part.type ?? 'application/octet-stream' }), part.filename)
  }
  const response = new Response(form)
  return {
    payload: Buffer.from(await response.arrayBuffer()),
    headers: { 'content-type': response.headers.get('content-type') ?? '' }
  }
}

/** One `file` part holding `data`. */
export const fileBody = (data: Uint8Array, filename = 'image', type = 'application/octet-stream') =>
  multipartBody([{ name: 'file', value: data, filename, type }])

export const IMAGES = [
  { file: 'pixel.jpg', type: 'image/jpeg' },
  { file: 'pixel.png', type: 'image/png' },
  { file: 'pixel.webp', type: 'image/webp' },
  { file: 'pixel.gif', type: 'image/gif' }
] as const

/** A 1×1 image from test/fixtures. */
export const fixture = (file: string) => readFile(join(projectRoot, 'test', 'fixtures', file))

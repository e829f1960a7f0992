import type { IncomingHttpHeaders } from 'node:http'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import type { Test } from 'tap'

// Every receiver is a Fastify server on 127.0.0.1 started by the test; nothing else is ever connected to.

export interface Received {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: string
  remotePort: number | undefined
}

export type Handler = (request: FastifyRequest, reply: FastifyReply) => unknown

/** A receiver answering with `handler`, which records every request it gets. */
export async function receiver (t: Test, handler: Handler = async () => 'ok'): Promise<{ url: string, received: Received[] }> {
  // Connections still open (a receiver that never answers) are cut when the test ends.
  const app = Fastify({ forceCloseConnections: true })
  app.removeAllContentTypeParsers()
  // The raw text, as a receiver needs it to check the signature.
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => { done(null, body) })
  const received: Received[] = []
  app.all('/*', async (request, reply) => {
    received.push({ method: request.method, url: request.url, headers: request.headers, body: String(request.body ?? ''), remotePort: request.raw.socket.remotePort })
    return await handler(request, reply)
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, received }
}

import type { FastifyBodyParser, FastifyInstance, FastifyRequest } from 'fastify'
import { badRequest } from './problem.js'

type Done = (error: Error | null, body?: unknown) => void

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * JSON body parser that rejects invalid UTF-8 (RFC 8259 §8.1) instead of letting Fastify's
 * string decoding silently replace the bad bytes with U+FFFD. Parsing itself, empty-body
 * and prototype-poisoning checks are Fastify's own.
 */
export function strictJsonParser (app: FastifyInstance): FastifyBodyParser<Buffer> {
  // Fastify's default JSON parser is the callback form of its FastifyBodyParser union.
  const parseJson = app.getDefaultJsonParser('error', 'error') as (request: FastifyRequest, body: string, done: Done) => void
  return (request, body, done) => {
    let text: string
    try {
      text = utf8.decode(body)
    } catch {
      done(badRequest('The request body is not valid UTF-8'), undefined)
      return
    }
    parseJson(request, text, done)
  }
}

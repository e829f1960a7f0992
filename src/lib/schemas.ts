import type { TSchema } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'

/**
 * Registers the named `schemas` this scope cannot see yet. A resource's routes register their components in
 * their own scope, so a sibling that refers to them (an upload answering an `Item`) registers them again in its own.
 */
export function addMissingSchemas (app: FastifyInstance, schemas: TSchema[]): void {
  for (const schema of schemas) if (schema.$id !== undefined && app.getSchema(schema.$id) === undefined) app.addSchema(schema)
}

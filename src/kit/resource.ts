import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { TSchema } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import type { ResourceContract } from '../../schemas/common.js'
import type { Config } from '../config.js'

/**
 * Settings of resources that tests (or an embedding program) change beyond the configuration, such as shorter delays:
 * each resource adds its own member to this interface (declaration merging), and `AppOptions.resources` carries them.
 */
export interface ResourceTuning {}

/** What every resource's routes are given. */
export interface ResourceOptions {
  config: Config
  tuning: ResourceTuning
}

/** A resource: its contract (tag, components, scopes, from its schema module) and the plugin of its routes. */
export interface Resource {
  contract: ResourceContract
  routes: FastifyPluginAsyncTypebox<ResourceOptions>
}

export const resource = (contract: ResourceContract, routes: FastifyPluginAsyncTypebox<ResourceOptions>): Resource => ({ contract, routes })

/** Registers named component schemas on `app` (the root), so any route may refer to any of them, each once though several resources list it. */
export function addComponents (app: FastifyInstance, schemas: TSchema[]): void {
  for (const schema of schemas) {
    if (schema.$id !== undefined && app.getSchema(schema.$id) === undefined) app.addSchema(schema)
  }
}

/** Registers the routes of `resources` under `prefix`, each resource in a scope of its own. */
export async function registerResources (app: FastifyInstance, resources: Resource[], prefix: string, options: ResourceOptions): Promise<void> {
  for (const { routes } of resources) await app.register(routes, { prefix, ...options })
}

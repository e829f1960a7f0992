import { authResource } from '../schemas/auth.js'
import { eventsResource } from '../schemas/events.js'
import { itemsResource } from '../schemas/items.js'
import { jobsResource } from '../schemas/jobs.js'
import { serviceResource } from '../schemas/service.js'
import { usersResource } from '../schemas/users.js'
import { webhooksResource } from '../schemas/webhooks.js'
import authRoutes from './auth/routes.js'
import items from './items/routes.js'
import jobs from './jobs/routes.js'
import { resource } from './kit/resource.js'
import events from './events/routes.js'
import service from './service/routes.js'
import users from './users/routes.js'
import webhooks from './webhooks/routes.js'

/**
 * The resources of the API, served under `API_PREFIX`: a resource is its schema module, its folder and its entry here.
 * Their tags are listed in the documents in this order.
 */
export const apiResources = [
  resource(authResource, authRoutes),
  resource(usersResource, users),
  resource(itemsResource, items),
  resource(jobsResource, jobs),
  resource(eventsResource, events),
  resource(webhooksResource, webhooks)
]

/** Health, metrics and the link index, served at the root for probes and scrapers. */
export const serviceResources = [resource(serviceResource, service)]

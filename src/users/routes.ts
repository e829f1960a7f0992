import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import {
  changePassword, createUser, deleteCurrentUser, deleteUser, getCurrentUser, getUser, getUserAvatar, listUsers,
  updateCurrentUser, updateUser, uploadAvatar, type UserAdminUpdate
} from '../../schemas/users.js'
import { hashPassword, verifyPassword } from '../auth/passwords.js'
import { revokeUserSessions } from '../auth/repository.js'
import type { Executor } from '../db/client.js'
import { deleteItemsOf } from '../items/repository.js'
import type { ResourceOptions } from '../kit/resource.js'
import { found, sendCreated, sendEntity, sendPage } from '../kit/responses.js'
import { uploadRoutes } from '../kit/scopes.js'
import { CursorCodec } from '../lib/pagination.js'
import { accountGone, badRequest, conflict, forbidden, notFound } from '../lib/problem.js'
import { currentPrincipal } from '../auth/plugin.js'
import { readImageUpload, serveImage } from '../storage/images.js'
import { ensureFirstSuperuser } from './first-superuser.js'
import * as repository from './repository.js'

/**
 * Changes a user inside a transaction. When the change could leave no active superuser (deleting,
 * deactivating or demoting one), the active superusers are locked first and the change refused if
 * the user is the last of them.
 */
async function changeUser<T> (
  db: Executor,
  id: string,
  endsSuperuser: boolean,
  work: (tx: Executor, user: repository.UserRow) => Promise<T>
): Promise<T> {
  return await repository.withUniqueEmail(() => db.transaction(async (tx) => {
    const superusers = endsSuperuser ? await repository.lockActiveSuperusers(tx) : []
    const user = await repository.findUserById(tx, id)
    if (user === undefined) throw notFound('No user has this id')
    if (superusers.length === 1 && superusers[0] === id) {
      throw conflict('This is the last active superuser: make another user a superuser first', { code: 'last-superuser' })
    }
    return await work(tx, user)
  }))
}

const endsSuperuser = (changes: UserAdminUpdate) => changes.isActive === false || changes.isSuperuser === false

/** Deletes a user and everything they own; their items first, so that each one's deletion is announced. */
async function deleteAccount (tx: Executor, id: string): Promise<void> {
  await deleteItemsOf(tx, id)
  await repository.deleteUserById(tx, id)
}

const sendUser = (request: FastifyRequest, reply: FastifyReply, row: repository.UserRow) =>
  sendEntity(request, reply, repository.userEtag(row), repository.toUser(row))

/** Sign-up, your own account, and user administration. */
const users: FastifyPluginAsyncTypebox<ResourceOptions> = async (app, { config }) => {
  // On ready rather than now, so a refusal fails `ready()`/`listen()` and the caller can still close the app.
  app.addHook('onReady', () => ensureFirstSuperuser(app.db, config, app.log))
  const cursors = new CursorCodec(app.deriveKey('cursor'))

  app.post('/users', { schema: createUser }, async (request, reply) => {
    if (!config.ALLOW_SIGNUP && request.user?.scopes.includes('admin') !== true) {
      throw forbidden('Sign-up is closed: only an administrator may create users', { code: 'signup-closed' })
    }
    const { email, password, fullName } = request.body
    const passwordHash = await hashPassword(password)
    const row = await repository.withUniqueEmail(() => repository.insertUser(app.db, { email, passwordHash, fullName }))
    return sendCreated(reply, repository.userUrl(row.id), repository.userEtag(row), repository.toUser(row))
  })

  app.get('/users/me', { schema: getCurrentUser }, async (request, reply) => {
    const row = await repository.findUserById(app.db, currentPrincipal(request).id)
    // The token was checked against an existing user moments ago; it may have been deleted since.
    if (row === undefined) throw accountGone()
    reply.header('cache-control', 'private, no-store')
    return sendUser(request, reply, row)
  })

  app.patch('/users/me', { schema: updateCurrentUser }, async (request, reply) => {
    const { id } = currentPrincipal(request)
    const row = await repository.withUniqueEmail(() => repository.updateUser(app.db, id, request.body))
    if (row === undefined) throw accountGone()
    return sendUser(request, reply.header('cache-control', 'private, no-store'), row)
  })

  // Checking the current password is a way to guess it: limited per user as strictly as logins are.
  const passwordChecks = app.limitRequests([
    { name: 'password-check', max: config.AUTH_RATE_LIMIT_PER_MINUTE, timeWindow: 60_000, key: (request) => request.user?.id }
  ])
  app.put('/users/me/password', { schema: changePassword, onRequest: passwordChecks }, async (request, reply) => {
    const { id } = currentPrincipal(request)
    const { currentPassword, newPassword } = request.body
    if (!await verifyPassword(await repository.findPasswordHash(app.db, id), currentPassword)) {
      throw badRequest('The current password is incorrect', {
        code: 'wrong-password',
        errors: [{ in: 'body', path: '/currentPassword', message: 'is incorrect' }]
      })
    }
    const passwordHash = await hashPassword(newPassword)
    await app.db.transaction(async (tx) => {
      await repository.updateUser(tx, id, { passwordHash })
      await revokeUserSessions(tx, id)
    })
    return reply.code(204).send()
  })

  app.delete('/users/me', { schema: deleteCurrentUser }, async (request, reply) => {
    const { id } = currentPrincipal(request)
    await changeUser(app.db, id, true, (tx) => deleteAccount(tx, id))
    return reply.code(204).send()
  })

  app.get('/users', { schema: listUsers }, async (request, reply) => {
    const { limit, cursor, sort, isActive, isSuperuser, email } = request.query
    const page = await repository.listUsers(app.db, cursors, { sort, limit, cursor, filters: { isActive, isSuperuser, email } })
    return sendPage(request, reply, page, repository.toUser)
  })

  app.get('/users/:id', { schema: getUser }, async (request, reply) => {
    const row = found(await repository.findUserById(app.db, request.params.id), 'No user has this id')
    return sendUser(request, reply, row)
  })

  app.patch('/users/:id', { schema: updateUser }, async (request, reply) => {
    const { id } = request.params
    const changes = request.body
    const row = await changeUser(app.db, id, endsSuperuser(changes), async (tx, user) => {
      const updated = await repository.updateUser(tx, id, changes)
      if (user.isActive && changes.isActive === false) await revokeUserSessions(tx, id)
      return updated ?? user
    })
    return sendUser(request, reply, row)
  })

  app.delete('/users/:id', { schema: deleteUser }, async (request, reply) => {
    const { id } = request.params
    await changeUser(app.db, id, true, (tx) => deleteAccount(tx, id))
    return reply.code(204).send()
  })

  await uploadRoutes(app, config.UPLOAD_MAX_BYTES, (uploads, upload) => {
    uploads.put('/users/me/avatar', { schema: uploadAvatar, ...upload }, async (request, reply) => {
      const { id } = currentPrincipal(request)
      const image = await readImageUpload(request, config.UPLOAD_MAX_BYTES)
      const row = await repository.setAvatar(app.db, id, image)
      // The token was checked against an existing user moments ago; it may have been deleted since.
      if (row === undefined) throw accountGone()
      return sendUser(request, reply, row)
    })
  })

  app.get('/users/:id/avatar', { schema: getUserAvatar }, async (request, reply) =>
    await serveImage(app.db, repository.userAvatar, request.params.id, request, reply, 'This user does not exist or has no avatar'))
}

export default users

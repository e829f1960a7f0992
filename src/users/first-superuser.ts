import type { FastifyBaseLogger } from 'fastify'
import { hashPassword } from '../auth/passwords.js'
import type { Config } from '../config.js'
import type { Db } from '../db/client.js'
import { anySuperuser, findUserByEmail, insertUser, withUniqueEmail } from './repository.js'

/**
 * Creates the superuser named in the configuration when there is none, so a new deployment can be
 * administered. Refuses (throws) when that email belongs to an ordinary user: promoting an account
 * someone else may have signed up with would hand them the keys.
 */
export async function ensureFirstSuperuser (db: Db, config: Config, log: FastifyBaseLogger): Promise<void> {
  const email = config.FIRST_SUPERUSER_EMAIL
  const password = config.FIRST_SUPERUSER_PASSWORD
  if (email === undefined || password === undefined || await anySuperuser(db)) return
  const existing = await findUserByEmail(db, email)
  if (existing !== undefined) {
    throw new Error(`FIRST_SUPERUSER_EMAIL ${email} belongs to an existing ordinary user; refusing to promote it. ` +
      'Use another email, or make that user a superuser in the database.')
  }
  const passwordHash = await hashPassword(password)
  try {
    const user = await withUniqueEmail(() => insertUser(db, { email, passwordHash, isSuperuser: true }))
    log.info({ userId: user.id }, 'created the first superuser from FIRST_SUPERUSER_EMAIL')
  } catch (error) {
    // Another instance starting at the same moment created it first.
    if (await anySuperuser(db)) return
    throw error
  }
}

import { randomBytes } from 'node:crypto'
import { hash, verify, type Algorithm } from '@node-rs/argon2'

/** `Algorithm.Argon2id`: a const enum, which `isolatedModules` cannot read at run time. */
const ARGON2ID: Algorithm = 2

export const hashPassword = (password: string): Promise<string> => hash(password, { algorithm: ARGON2ID })

/** A hash of a random password, made once on first use: unknown users are checked against it. */
let dummyHash: Promise<string> | undefined

/**
 * Checks a password against a stored hash. Without a hash (unknown user) it still spends the time
 * of a real check, so the answer's timing does not tell whether the account exists.
 */
export async function verifyPassword (storedHash: string | undefined, password: string): Promise<boolean> {
  if (storedHash === undefined) {
    dummyHash ??= hashPassword(randomBytes(24).toString('base64url'))
    await verify(await dummyHash, password).catch(() => false)
    return false
  }
  return await verify(storedHash, password).catch(() => false)
}

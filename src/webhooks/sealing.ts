import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

/**
 * Signing secrets are kept encrypted (AES-256-GCM, `iv.tag.ciphertext` in base64url) with a key derived from the token
 * secret: a copy of the database alone does not let anyone sign as this server.
 */
export class SecretBox {
  constructor (private readonly key: Buffer) {}

  seal (secret: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.key, iv)
    const sealed = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()])
    return [iv, cipher.getAuthTag(), sealed].map((part) => part.toString('base64url')).join('.')
  }

  open (sealed: string): string {
    const [iv = '', tag = '', data = ''] = sealed.split('.')
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8')
  }
}

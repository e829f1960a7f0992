import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { packageInfo } from '../../src/paths.js'
import { newSecret, signedHeaders } from '../../src/webhooks/signing.js'

t.test('newSecret → whsec_ and the base64 of 32 random bytes, different each time', async (t) => {
  const secrets = new Set(Array.from({ length: 20 }, () => newSecret()))
  t.equal(secrets.size, 20)
  for (const secret of secrets) {
    t.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
    t.equal(Buffer.from(secret.slice('whsec_'.length), 'base64').length, 32)
  }
})

t.test('signedHeaders → the example of the Standard Webhooks specification', async (t) => {
  const payload = '{"test": 2432232314}'
  const headers = signedHeaders('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', new Date(1_614_265_330_000), payload)
  t.same(headers, {
    'content-type': 'application/json',
    'user-agent': `catalog-api-webhooks/${packageInfo.version}`,
    'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    'webhook-timestamp': '1614265330',
    'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
  })
})

t.test('signedHeaders → verified by a Standard Webhooks receiver, and only with the same secret and payload', async (t) => {
  const secret = newSecret()
  const payload = JSON.stringify({ type: 'item.created', data: { id: 'itm_1', name: 'Chair' } })
  const headers = signedHeaders(secret, 'evt_1', new Date(), payload)
  t.same(new Webhook(secret).verify(payload, headers), JSON.parse(payload))
  t.throws(() => new Webhook(newSecret()).verify(payload, headers), { name: 'WebhookVerificationError' })
  t.throws(() => new Webhook(secret).verify(payload.replace('Chair', 'Table'), headers), { name: 'WebhookVerificationError' })
})

t.test('signedHeaders → the timestamp is whole unix seconds, and an old one is refused by receivers', async (t) => {
  const secret = newSecret()
  const headers = signedHeaders(secret, 'evt_2', new Date(Date.now() - 10 * 60_000), '{}')
  t.match(headers['webhook-timestamp'], /^[0-9]+$/)
  t.throws(() => new Webhook(secret).verify('{}', headers), { message: 'Message timestamp too old' })
})

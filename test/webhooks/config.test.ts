import t from 'tap'
import { loadConfig } from '../../src/config.js'

t.test('config: WEBHOOK_ALLOW_PRIVATE_TARGETS is false unless set', async (t) => {
  t.equal(loadConfig({}).WEBHOOK_ALLOW_PRIVATE_TARGETS, false)
  t.equal(loadConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: '' }).WEBHOOK_ALLOW_PRIVATE_TARGETS, false)
})

t.test('config: WEBHOOK_ALLOW_PRIVATE_TARGETS reads true and false like other booleans', async (t) => {
  for (const value of ['true', 'TRUE', '1']) t.equal(loadConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: value }).WEBHOOK_ALLOW_PRIVATE_TARGETS, true, value)
  for (const value of ['false', 'False', '0']) t.equal(loadConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: value }).WEBHOOK_ALLOW_PRIVATE_TARGETS, false, value)
  t.throws(() => loadConfig({ WEBHOOK_ALLOW_PRIVATE_TARGETS: 'yes' }), { name: 'ConfigError', message: /WEBHOOK_ALLOW_PRIVATE_TARGETS: must be true or false \(got "yes"\)/ })
})

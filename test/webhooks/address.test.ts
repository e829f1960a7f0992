import type { LookupAddress } from 'node:dns'
import { connect, createServer, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { checkTargetUrl, guardedLookup, isPublicAddress, UnsafeTargetError } from '../../src/webhooks/address.js'

// Nothing here leaves the machine: only localhost is resolved for real (from /etc/hosts), other names by a stub
// resolver, and the one connection made is to a listener on 127.0.0.1.

type AddressModule = typeof import('../../src/webhooks/address.js')

/** The module with DNS answering `answers[name]`, and ENOTFOUND for any other name. */
async function withResolver (t: Test, answers: Record<string, string[]>): Promise<AddressModule> {
  const resolve = (name: string): LookupAddress[] => {
    const addresses = answers[name]
    if (addresses === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' })
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
  }
  type Callback = (error: Error | null, address?: string | LookupAddress[], family?: number) => void
  return await t.mockImport<AddressModule>('../../src/webhooks/address.js', {
    'node:dns/promises': { lookup: async (name: string) => resolve(name) },
    'node:dns': {
      lookup: (name: string, options: { all?: boolean }, callback: Callback) => {
        try {
          const found = resolve(name)
          if (options.all === true) callback(null, found)
          else callback(null, found[0]?.address, found[0]?.family)
        } catch (error) {
          callback(error as Error)
        }
      }
    }
  })
}

const notPublic: Record<string, string[]> = {
  loopback: ['127.0.0.1', '127.0.0.2', '127.255.255.254', '::1'],
  private: ['10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.254', '192.168.0.1', '192.168.255.255'],
  'link-local and cloud metadata': ['169.254.0.1', '169.254.169.254', 'fe80::1', 'fe80::1%eth0', 'febf::1'],
  'carrier-grade NAT': ['100.64.0.1', '100.127.255.254'],
  unspecified: ['0.0.0.0', '0.1.2.3', '::'],
  broadcast: ['255.255.255.255'],
  multicast: ['224.0.0.1', '239.255.255.250', 'ff02::1', 'ff0e::1'],
  'reserved and documentation': ['192.0.0.8', '192.0.2.1', '198.18.0.1', '198.51.100.1', '203.0.113.1', '240.0.0.1', '2001:db8::1', '3fff::1'],
  'unique-local (AWS IPv6 metadata included)': ['fc00::1', 'fd00::1', 'fd00:ec2::254'],
  'IPv4-mapped IPv6 of a non-public IPv4': ['::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '::ffff:0.0.0.0'],
  'IPv6 embeddings of IPv4 (NAT64, 6to4, Teredo, IPv4-translated, IPv4-compatible)': ['64:ff9b::7f00:1', '64:ff9b::808:808', '64:ff9b:1::a00:1', '2002:7f00:1::1', '2002:808:808::1', '2001::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '::ffff:0:7f00:1', '::7f00:1'],
  'outside the global unicast space': ['100::1', '4000::1', 'fec0::1'],
  'not an IP address': ['', 'localhost', 'example.com', '127.1', '0x7f000001', '2130706433', '[::1]', '127.0.0.1:80', '1.2.3.4.5', '::g', ' 8.8.8.8']
}

const publicAddresses = ['8.8.8.8', '1.1.1.1', '93.184.215.14', '2606:4700:4700::1111', '2001:4860:4860::8888', '::ffff:8.8.8.8', '::ffff:808:808']

for (const [kind, addresses] of Object.entries(notPublic)) {
  t.test(`isPublicAddress → false for ${kind}`, async (t) => {
    for (const address of addresses) t.equal(isPublicAddress(address), false, address)
  })
}

t.test('isPublicAddress → true for global unicast, IPv4 and IPv6', async (t) => {
  for (const address of publicAddresses) t.equal(isPublicAddress(address), true, address)
})

const guarded = { allowPrivate: false, requireHttps: false }
const open = { allowPrivate: true, requireHttps: false }
const loopbackSpellings = [
  'http://127.0.0.1:1/',
  'http://127.0.0.2/',
  'http://localhost/',
  'http://LOCALHOST:8080/hook',
  'http://[::1]/',
  'http://[::ffff:127.0.0.1]/',
  'http://[0:0:0:0:0:ffff:7f00:1]/',
  'http://2130706433/',
  'http://0x7f000001/',
  'http://0x7f.1/',
  'http://0177.0.0.1/',
  'http://127.1/',
  'https://127.0.0.1/'
]

for (const url of loopbackSpellings) {
  t.test(`checkTargetUrl → refuses ${url}`, async (t) => {
    await t.rejects(checkTargetUrl(url, guarded), { name: 'UnsafeTargetError', message: /must not resolve to a loopback, private, link-local or metadata address/ })
  })
}

t.test('checkTargetUrl → refuses private, link-local, metadata and unspecified literals', async (t) => {
  for (const url of ['http://10.0.0.1/', 'http://192.168.1.1/', 'http://172.16.0.1/', 'http://169.254.169.254/latest/meta-data/', 'http://[fd00:ec2::254]/', 'http://[fe80::1]/', 'http://100.64.0.1/', 'http://0.0.0.0/', 'http://[::]/', 'http://0/']) {
    await t.rejects(checkTargetUrl(url, guarded), UnsafeTargetError, url)
  }
})

t.test('checkTargetUrl → the message names the host, not what a name resolved to', async (t) => {
  await t.rejects(checkTargetUrl('http://localhost/', guarded), { message: 'webhook URLs must not resolve to a loopback, private, link-local or metadata address (localhost)' })
  await t.rejects(checkTargetUrl('http://2130706433/', guarded), { message: 'webhook URLs must not resolve to a loopback, private, link-local or metadata address (127.0.0.1)' })
})

t.test('checkTargetUrl → allows loopback in every spelling with allowPrivate', async (t) => {
  for (const url of loopbackSpellings) await t.resolves(checkTargetUrl(url, open), url)
})

t.test('checkTargetUrl → allows public IP literals without a lookup', async (t) => {
  for (const url of ['http://8.8.8.8/', 'https://1.1.1.1:8443/hook?x=1', 'https://[2606:4700:4700::1111]/']) {
    await t.resolves(checkTargetUrl(url, guarded), url)
  }
})

t.test('checkTargetUrl → refuses schemes other than http and https', async (t) => {
  for (const url of ['ftp://8.8.8.8/', 'file:///etc/passwd', 'gopher://8.8.8.8/', 'ws://8.8.8.8/', 'javascript:alert(1)', 'data:text/plain,hi']) {
    await t.rejects(checkTargetUrl(url, open), { name: 'UnsafeTargetError', message: /must use http or https/ }, url)
  }
})

t.test('checkTargetUrl → refuses http when requireHttps', async (t) => {
  await t.rejects(checkTargetUrl('http://8.8.8.8/', { allowPrivate: true, requireHttps: true }), { name: 'UnsafeTargetError', message: 'webhook URLs must use https (got http)' })
  await t.resolves(checkTargetUrl('https://8.8.8.8/', { allowPrivate: false, requireHttps: true }))
})

t.test('checkTargetUrl → refuses credentials in the URL', async (t) => {
  for (const url of ['http://user:pass@8.8.8.8/', 'http://user@8.8.8.8/', 'http://:pass@8.8.8.8/']) {
    await t.rejects(checkTargetUrl(url, open), { name: 'UnsafeTargetError', message: /user name or password/ }, url)
  }
})

t.test('checkTargetUrl → refuses what is not an absolute URL', async (t) => {
  for (const url of ['', 'not a url', '/relative/path', 'http://', 'http://[::1/']) {
    await t.rejects(checkTargetUrl(url, open), { name: 'UnsafeTargetError', message: /absolute http or https URLs/ }, url)
  }
})

t.test('checkTargetUrl → refuses a host that does not resolve', async (t) => {
  const { checkTargetUrl } = await withResolver(t, {})
  await t.rejects(checkTargetUrl('http://hooks.example.com/', open), { name: 'UnsafeTargetError', message: 'the host of the webhook URL (hooks.example.com) does not resolve (ENOTFOUND)' })
})

t.test('checkTargetUrl → refuses a name when any of its addresses is not public', async (t) => {
  const { checkTargetUrl, UnsafeTargetError } = await withResolver(t, {
    'public.example.com': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
    'mixed.example.com': ['93.184.215.14', '10.0.0.7'],
    'metadata.example.com': ['169.254.169.254'],
    'mapped.example.com': ['::ffff:127.0.0.1']
  })
  await t.resolves(checkTargetUrl('https://public.example.com/hook', guarded))
  for (const name of ['mixed', 'metadata', 'mapped']) {
    await t.rejects(checkTargetUrl(`https://${name}.example.com/hook`, guarded), UnsafeTargetError, name)
    await t.resolves(checkTargetUrl(`https://${name}.example.com/hook`, open), name)
  }
  await t.rejects(checkTargetUrl('https://mixed.example.com/', guarded), { message: /\(mixed\.example\.com\)$/ })
})

/** Connects through `lookup` to a listener on 127.0.0.1, by the name localhost; resolves with the error, if any. */
async function connectThrough (t: Test, lookup: ReturnType<typeof guardedLookup>): Promise<{ error: Error | null, accepted: number }> {
  let accepted = 0
  const server = createServer((socket: Socket) => { accepted++; socket.destroy() })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const { port } = server.address() as { port: number }
  const error = await new Promise<Error | null>((resolve) => {
    const socket = connect({ host: 'localhost', port, lookup, family: 4 })
    socket.once('connect', () => { socket.destroy(); resolve(null) })
    socket.once('error', resolve)
  })
  return { error, accepted }
}

t.test('guardedLookup → a connection to a name that resolves to loopback fails with UnsafeTargetError', async (t) => {
  const { error, accepted } = await connectThrough(t, guardedLookup(false))
  t.type(error, UnsafeTargetError)
  t.match(error, { message: /\(localhost\)$/ })
  t.equal(accepted, 0)
})

t.test('guardedLookup → with allowPrivate it resolves as dns.lookup does', async (t) => {
  const { error, accepted } = await connectThrough(t, guardedLookup(true))
  t.equal(error, null)
  t.equal(accepted, 1)
})

/** What `lookup` answers for `name`. */
async function lookUp (lookup: ReturnType<typeof guardedLookup>, name: string, all: boolean): Promise<{ error: Error | null, address: unknown }> {
  return await new Promise((resolve) => {
    lookup(name, { all }, (error, address) => { resolve({ error, address }) })
  })
}

t.test('guardedLookup → a name that now resolves to a private address is refused (DNS rebinding)', async (t) => {
  const { guardedLookup, UnsafeTargetError } = await withResolver(t, {
    'rebound.example.com': ['10.1.2.3'],
    'mixed.example.com': ['93.184.215.14', 'fd00:ec2::254'],
    'public.example.com': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c']
  })
  const lookup = guardedLookup(false)
  for (const all of [false, true]) {
    t.type((await lookUp(lookup, 'rebound.example.com', all)).error, UnsafeTargetError, `all: ${all}`)
    t.same(await lookUp(lookup, 'public.example.com', all), { error: null, address: all ? [{ address: '93.184.215.14', family: 4 }, { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 }] : '93.184.215.14' }, `all: ${all}`)
  }
  t.type((await lookUp(lookup, 'mixed.example.com', true)).error, UnsafeTargetError)
  t.same(await lookUp(guardedLookup(true), 'rebound.example.com', false), { error: null, address: '10.1.2.3' })
})

t.test('guardedLookup → passes on a resolution failure as it is', async (t) => {
  const { guardedLookup, UnsafeTargetError } = await withResolver(t, {})
  const { error } = await lookUp(guardedLookup(false), 'gone.example.com', false)
  t.match(error, { code: 'ENOTFOUND' })
  t.notOk(error instanceof UnsafeTargetError)
})

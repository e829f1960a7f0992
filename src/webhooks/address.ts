import { lookup as lookupCallback, type LookupAddress } from 'node:dns'
import { lookup } from 'node:dns/promises'
import { isIP, type LookupFunction } from 'node:net'
import ipaddr from 'ipaddr.js'

/**
 * IANA's global unicast space. ipaddr.js calls every IPv6 address outside its special ranges `unicast`, including the
 * unassigned and reserved rest of the space (for example the deprecated IPv4-compatible `::a.b.c.d`), none of which
 * a webhook receiver can have.
 */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3')

/** Why a webhook target is refused; the message is meant for the API client who gave the URL. */
export class UnsafeTargetError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'UnsafeTargetError'
  }

  /**
   * The refusal of `host` (a name or an IP address), which resolved to a non-public address. The address a name
   * resolved to is left out: it would tell API clients what names inside our network point to.
   */
  static forHost (host: string): UnsafeTargetError {
    return new UnsafeTargetError(`webhook URLs must not resolve to a loopback, private, link-local or metadata address (${host})`)
  }
}

/**
 * Whether `address` (an IP address in its usual text form, as DNS or the WHATWG URL parser give it) is globally
 * routable unicast. Loopback, private, link-local (cloud metadata included), carrier-grade NAT, unspecified, broadcast,
 * multicast, reserved and documentation ranges, unique-local IPv6 and the IPv6 forms that embed an IPv4 address for
 * translation or tunnelling (NAT64, 6to4, Teredo) are not; an IPv4-mapped IPv6 address is judged by its IPv4 address.
 * Anything that is not an IP address is not public.
 */
export function isPublicAddress (address: string): boolean {
  // net.isIP accepts only the canonical spellings, so `127.1` or `0x7f.1` never reach ipaddr.js's lenient parser.
  if (isIP(address) === 0) return false
  const parsed = ipaddr.process(address)
  if (parsed.range() !== 'unicast') return false
  return parsed instanceof ipaddr.IPv4 || parsed.match(GLOBAL_UNICAST_V6)
}

export interface TargetOptions {
  /** Accept targets on loopback and private networks (development, or receivers inside the same network). */
  allowPrivate: boolean
  requireHttps: boolean
}

/**
 * Checks a webhook URL when it is given: http or https (https alone with `requireHttps`), no credentials, a host that
 * resolves, and (unless `allowPrivate`) only to public addresses: one private address among several is enough to
 * refuse, since a connection may use any of them. Throws UnsafeTargetError saying why.
 */
export async function checkTargetUrl (url: string, options: TargetOptions): Promise<void> {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new UnsafeTargetError('webhook URLs must be absolute http or https URLs')
  }
  if (options.requireHttps ? parsed.protocol !== 'https:' : parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UnsafeTargetError(`webhook URLs must use ${options.requireHttps ? 'https' : 'http or https'} (got ${parsed.protocol.slice(0, -1)})`)
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new UnsafeTargetError('webhook URLs must not contain a user name or password')
  }
  // The URL parser has already turned every IPv4 spelling (2130706433, 0x7f000001, 127.1) into dotted decimal.
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname
  const addresses = isIP(host) === 0 ? await resolve(host) : [host]
  if (!options.allowPrivate && !addresses.every((address) => isPublicAddress(address))) throw UnsafeTargetError.forHost(host)
}

async function resolve (host: string): Promise<string[]> {
  try {
    const found = await lookup(host, { all: true, verbatim: true })
    return found.map((entry) => entry.address)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error'
    throw new UnsafeTargetError(`the host of the webhook URL (${host}) does not resolve (${code})`)
  }
}

/**
 * A `lookup` for `net.connect` (and undici's `connect` option) that resolves as `dns.lookup` does, then fails the
 * connection with UnsafeTargetError when an address it would connect to is not public (unless `allowPrivate`). Checking
 * at connection time, not only when the URL was given, defeats DNS rebinding: a name that resolved to a public address
 * then may resolve to 127.0.0.1 now. `net.connect` does not call `lookup` for an IP literal: check those before connecting.
 */
export function guardedLookup (allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    lookupCallback(hostname, options, (error, address, family) => {
      if (error !== null || allowPrivate) {
        callback(error, address, family)
        return
      }
      const addresses = typeof address === 'string' ? [address] : address.map((entry: LookupAddress) => entry.address)
      const safe = addresses.every((each) => isPublicAddress(each))
      callback(safe ? null : UnsafeTargetError.forHost(hostname), address, family)
    })
  }
}

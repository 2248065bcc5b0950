/**
 * IP ranges as Exchange writes them in RemoteIPRanges: a single address, CIDR ("192.0.2.0/24",
 * "2001:db8::/32") or "first-last". Held as bigints so containment and size are arithmetic.
 * IPv4-mapped IPv6 addresses (::ffff:192.0.2.1, as Node reports v4 clients on a [::] listener)
 * are treated as the IPv4 address.
 */
import { Address4, Address6 } from 'ip-address';

export type IpFamily = 4 | 6;

export interface IpRange {
  readonly text: string;
  readonly family: IpFamily;
  readonly first: bigint;
  readonly last: bigint;
}

export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
  readonly text: string;
}

/** Parses one address; IPv4-mapped IPv6 becomes IPv4. Zone ids ("%eth0") are ignored. */
export function parseIp(text: string): IpAddress | undefined {
  const t = text.trim().replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (Address4.isValid(t) && /^\d+\.\d+\.\d+\.\d+$/.test(t)) {
    const a = new Address4(t);
    return { family: 4, value: a.bigInt(), text: a.correctForm() };
  }
  if (t.includes(':') && Address6.isValid(t) && !t.includes('/')) {
    const a = new Address6(t);
    if (a.is4()) {
      const v4 = a.to4();
      return { family: 4, value: v4.bigInt(), text: v4.correctForm() };
    }
    return { family: 6, value: a.bigInt(), text: a.correctForm() };
  }
  return undefined;
}

/** Parses a range; returns an error message instead when the text is not a valid range. */
export function parseIpRange(text: string): IpRange | { error: string } {
  const t = text.trim();
  const dash = t.indexOf('-');
  if (dash > 0) {
    const a = parseIp(t.slice(0, dash));
    const b = parseIp(t.slice(dash + 1));
    if (!a || !b) return { error: `bad IP range "${text}": both ends of first-last must be IP addresses` };
    if (a.family !== b.family) return { error: `bad IP range "${text}": both ends must be of the same family` };
    if (a.value > b.value) return { error: `bad IP range "${text}": the first address is after the last` };
    return { text: t, family: a.family, first: a.value, last: b.value };
  }
  const slash = t.indexOf('/');
  if (slash > 0) {
    const addr = t.slice(0, slash).replace(/^\[|\]$/g, '');
    const bits = t.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits)) return { error: `bad IP range "${text}": prefix length must be a number` };
    try {
      if (/^\d+\.\d+\.\d+\.\d+$/.test(addr) && Address4.isValid(`${addr}/${bits}`) && Number(bits) <= 32) {
        const a = new Address4(`${addr}/${bits}`);
        return { text: t, family: 4, first: a.startAddress().bigInt(), last: a.endAddress().bigInt() };
      }
      if (addr.includes(':') && Address6.isValid(`${addr}/${bits}`) && Number(bits) <= 128) {
        const a = new Address6(`${addr}/${bits}`);
        return { text: t, family: 6, first: a.startAddress().bigInt(), last: a.endAddress().bigInt() };
      }
    } catch {
      /* fall through */
    }
    return { error: `bad IP range "${text}": not a valid CIDR block` };
  }
  const one = parseIp(t);
  if (!one) return { error: `bad IP range "${text}": expected an IP address, a CIDR block or first-last` };
  return { text: t, family: one.family, first: one.value, last: one.value };
}

export function isIpRange(r: IpRange | { error: string }): r is IpRange {
  return !('error' in r);
}

export function rangeContains(range: IpRange, ip: IpAddress): boolean {
  return range.family === ip.family && ip.value >= range.first && ip.value <= range.last;
}

/** Number of addresses in the range: the smaller, the more specific. */
export function rangeSize(range: IpRange): bigint {
  return range.last - range.first + 1n;
}

export function rangesOverlap(a: IpRange, b: IpRange): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

/** true when a contains all of b. */
export function rangeCovers(a: IpRange, b: IpRange): boolean {
  return a.family === b.family && a.first <= b.first && b.last <= a.last;
}

export const ALL_IPV4 = '0.0.0.0-255.255.255.255';
export const ALL_IPV6 = '::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';

/** A binding "IP:port", "[IPv6]:port"; host "0.0.0.0" / "::" mean every address of that family. */
export interface Binding {
  readonly text: string;
  readonly address: string; // "0.0.0.0", "127.0.0.1", "::", "::1"
  readonly family: IpFamily;
  readonly port: number;
  readonly wildcard: boolean;
}

export function parseBinding(text: string): Binding | { error: string } {
  const t = text.trim();
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(t) ?? /^([^:\[\]]+):(\d{1,5})$/.exec(t);
  if (!m) return { error: `bad binding "${text}": expected "IP:port" or "[IPv6]:port"` };
  const port = Number(m[2]);
  // Port 0 asks the system for a free port (tests, and an admin API nobody needs to find).
  if (port > 65535) return { error: `bad binding "${text}": port must be 0-65535` };
  const raw = m[1]!;
  const ip = parseIp(raw);
  if (!ip) return { error: `bad binding "${text}": "${raw}" is not an IP address` };
  const family: IpFamily = raw.includes(':') ? 6 : 4;
  const address = family === 6 ? new Address6(raw).correctForm() : ip.text;
  return { text: t, address, family, port, wildcard: address === '0.0.0.0' || address === '::' };
}

export function isBinding(b: Binding | { error: string }): b is Binding {
  return !('error' in b);
}

export function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * Parses a Send connector's smartHosts entries: "192.0.2.1", "[192.0.2.1]", "[2001:db8::1]:2525",
 * "2001:db8::1", "relay.fabrikam.com", "relay.fabrikam.com:587". Pure.
 *
 * Promises: every entry yields a SmartHost or an error message (never a throw); the port defaults
 * to the connector's `port`; a bare IPv6 address takes no port (write it in brackets to add one);
 * names are lower-cased without a trailing dot. FQDN smart hosts are resolved by the agent (MX
 * first, then A/AAAA, as Exchange does); IP smart hosts are used as they are.
 */
import { parseIp } from '../../model/ip-range.js';

export type SmartHost =
  | { readonly kind: 'ip'; readonly ip: string; readonly port: number; readonly text: string }
  | { readonly kind: 'fqdn'; readonly name: string; readonly port: number; readonly text: string };

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/i;

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

export function parseSmartHost(entry: string, defaultPort: number): SmartHost | { readonly error: string } {
  const text = entry.trim();
  if (!text) return { error: 'empty smart host' };
  // [IP] or [IP]:port
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracket) {
    const ip = parseIp(bracket[1]!.replace(/^ipv6:/i, ''));
    if (!ip) return { error: `${text}: not an IP address in brackets` };
    const port = bracket[2] === undefined ? defaultPort : parsePort(bracket[2]);
    if (port === undefined) return { error: `${text}: bad port` };
    return { kind: 'ip', ip: ip.text, port, text };
  }
  // bare IPv6 (more than one colon): no port possible
  if ((text.match(/:/g) ?? []).length > 1) {
    const ip = parseIp(text);
    if (!ip) return { error: `${text}: not an IP address` };
    return { kind: 'ip', ip: ip.text, port: defaultPort, text };
  }
  const colon = text.lastIndexOf(':');
  const host = colon >= 0 ? text.slice(0, colon) : text;
  const port = colon >= 0 ? parsePort(text.slice(colon + 1)) : defaultPort;
  if (port === undefined) return { error: `${text}: bad port` };
  const ip = parseIp(host);
  if (ip && /^[\d.]+$/.test(host)) return { kind: 'ip', ip: ip.text, port, text };
  const name = host.toLowerCase().replace(/\.$/, '');
  if (!HOSTNAME.test(name) || /^[\d.]+$/.test(name)) return { error: `${text}: not a host name or IP address` };
  return { kind: 'fqdn', name, port, text };
}

/** Parses a whole list; bad entries are returned separately so the caller can log them. */
export function parseSmartHosts(entries: readonly string[], defaultPort: number): { hosts: SmartHost[]; errors: string[] } {
  const hosts: SmartHost[] = [];
  const errors: string[] = [];
  for (const e of entries) {
    const r = parseSmartHost(e, defaultPort);
    if ('error' in r) errors.push(r.error);
    else hosts.push(r);
  }
  return { hosts, errors };
}

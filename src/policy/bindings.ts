/**
 * Listener bindings of Receive connectors ("IP:port", "[IPv6]:port"; port 0 = an ephemeral port
 * chosen by the system, for tests): parsing, matching a local endpoint, grouping into listeners. Pure.
 */
import { parseBinding, parseIp, type Binding } from '../model/ip-range.js';

/** The model's parser; kept under this name for the receive side. Port 0 = an ephemeral port. */
export const parseListenBinding = parseBinding;

/** Does this binding accept a connection that arrived on local address:port? */
export function bindingMatches(b: Binding, local: { address: string; port: number }): boolean {
  if (b.port !== local.port) return false;
  const ip = parseIp(local.address);
  if (!ip) return false;
  if (b.wildcard) {
    // An IPv6 wildcard listener also serves IPv4 clients when the system maps them; we listen
    // with ipv6Only, so each wildcard matches its own family only.
    return ip.family === b.family;
  }
  const bip = parseIp(b.address);
  return !!bip && bip.family === ip.family && bip.value === ip.value;
}

/** One TCP listener the Receive service opens, and the configured bindings it serves. */
export interface ListenerSpec {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
  /** Bound to 0.0.0.0 or [::]: the local address of a connection must be asked of the socket. */
  readonly wildcard: boolean;
  readonly bindings: string[];
}

/**
 * The listeners a connector list needs: one per distinct binding of the enabled connectors, except
 * that a wildcard binding (0.0.0.0:25, [::]:25) absorbs the specific bindings of its family on
 * that port (the system would refuse both; connector selection still sees the real local
 * address). Port 0 bindings are never merged: each is its own ephemeral port.
 */
export function listenerSpecs(connectors: readonly { readonly enabled: boolean; readonly bindings: readonly string[] }[]): ListenerSpec[] {
  const parsed = connectors
    .filter((c) => c.enabled)
    .flatMap((c) => c.bindings.map((t) => parseListenBinding(t)))
    .filter((b): b is Binding => !('error' in b));
  const wildcardPorts = new Set(parsed.filter((b) => b.wildcard && b.port !== 0).map((b) => `${b.family}|${b.port}`));
  const specs = new Map<string, ListenerSpec>();
  for (const b of parsed) {
    const useWildcard = b.port !== 0 && wildcardPorts.has(`${b.family}|${b.port}`);
    const host = useWildcard ? (b.family === 4 ? '0.0.0.0' : '::') : b.address;
    const key = `${host}|${b.port}`;
    const spec = specs.get(key) ?? { key, host, port: b.port, family: b.family, wildcard: useWildcard || b.wildcard, bindings: [] };
    if (!spec.bindings.includes(b.text)) spec.bindings.push(b.text);
    specs.set(key, spec);
  }
  return [...specs.values()];
}

/**
 * `mailyard connector match --local IP:PORT --remote IP`: which Receive connector would take such
 * a connection and why, using the daemon's own selection (policy/connector-select). Returns the
 * text to print and a JSON form; the lead wires it into commander.
 */
import type { Config } from '../config/defaults.js';
import { parseIp } from '../model/ip-range.js';
import { selectConnector } from '../policy/connector-select.js';
import { formatPermissions, permissionsFor } from '../policy/permissions.js';

export interface ConnectorMatchJson {
  readonly local: string;
  readonly remote: string;
  readonly connector: string | null;
  readonly remoteIPRange?: string;
  readonly transportRole?: string;
  readonly anonymousPermissions?: string[];
  readonly reason?: string;
  readonly steps: readonly string[];
}

/** Parses "IP:PORT" or "[IPv6]:PORT". */
export function parseLocalEndpoint(text: string): { address: string; port: number } | { error: string } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text.trim()) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text.trim());
  if (!m || !parseIp(m[1]!) || Number(m[2]) > 65535) return { error: `--local "${text}": expected IP:PORT or [IPv6]:PORT` };
  return { address: m[1]!, port: Number(m[2]) };
}

export function connectorMatch(config: Config, local: string, remote: string): { text: string; json: ConnectorMatchJson; ok: boolean } {
  const ep = parseLocalEndpoint(local);
  if ('error' in ep) {
    return { ok: false, text: `${ep.error}\n`, json: { local, remote, connector: null, reason: ep.error, steps: [] } };
  }
  const sel = selectConnector(config.receiveConnectors, ep, remote);
  const lines = [`Connection to ${local} from ${remote}:`, ...sel.steps.map((s, i) => `  ${i + 1}. ${s}`)];
  if (sel.kind === 'refused') {
    lines.push(`No Receive connector: ${sel.reason}. The connection would be refused.`);
    return { ok: false, text: `${lines.join('\n')}\n`, json: { local, remote, connector: null, reason: sel.reason, steps: sel.steps } };
  }
  const c = sel.connector;
  const anon = [...permissionsFor(c, { kind: c.authMechanism.includes('ExternalAuthoritative') ? 'externallySecured' : 'anonymous' })];
  lines.push(`Receive connector: ${c.name} (${c.transportRole}, remote range ${sel.range})`);
  lines.push(`Permissions before authentication: ${formatPermissions(new Set(anon)) || '(none)'}`);
  return {
    ok: true,
    text: `${lines.join('\n')}\n`,
    json: {
      local,
      remote,
      connector: c.name,
      remoteIPRange: sel.range,
      transportRole: c.transportRole,
      anonymousPermissions: formatPermissions(new Set(anon)).split(' ').filter(Boolean),
      steps: sel.steps,
    },
  };
}

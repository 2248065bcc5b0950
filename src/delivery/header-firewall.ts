/**
 * The header firewall on send (Exchange's Send-Headers-Organization / -Forest / -Routing
 * permissions, reference 3.3). Pure: works on the header block of a message as a string.
 *
 * Promises:
 * - organization and forest headers (X-Mailyard-Organization-*, X-Mailyard-Forest-*,
 *   X-MS-Exchange-Organization-*, X-MS-Exchange-Forest-*) are removed, folded continuation lines
 *   included, unless the destination is one of our own servers;
 * - Received and Resent-* headers are kept unless routing headers are explicitly not allowed;
 * - everything else, including line endings and byte values, is left exactly as it was.
 */

export interface HeaderFirewallPolicy {
  /** The destination is one of our own servers (organization.servers): keep org/forest headers. */
  readonly sendOrganizationHeaders: boolean;
  /** Send-Headers-Routing: keep Received/Resent-* (default true). */
  readonly sendRoutingHeaders?: boolean;
}

const ORG_OR_FOREST = /^x-(mailyard|ms-exchange)-(organization|forest)-/i;
const ROUTING = /^(received|resent-[a-z-]+)$/i;

export function isOrganizationOrForestHeader(name: string): boolean {
  return ORG_OR_FOREST.test(name);
}

export function isRoutingHeader(name: string): boolean {
  return ROUTING.test(name);
}

export interface FirewallResult {
  readonly headers: string;
  /** Names of the removed fields, in order (for logs and tests). */
  readonly removed: readonly string[];
}

/**
 * Filters a header block (the text before the first empty line, with its line endings; the empty
 * line itself may or may not be included and is kept as given).
 */
export function applyHeaderFirewall(headerBlock: string, policy: HeaderFirewallPolicy): FirewallResult {
  const keepRouting = policy.sendRoutingHeaders ?? true;
  if (policy.sendOrganizationHeaders && keepRouting) return { headers: headerBlock, removed: [] };
  // Split into lines keeping each line's terminator.
  const lines = headerBlock.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  let out = '';
  const removed: string[] = [];
  let dropping = false;
  for (const line of lines) {
    const continuation = line.startsWith(' ') || line.startsWith('\t');
    if (!continuation) {
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon).trim() : '';
      const blank = line === '\r\n' || line === '\n';
      dropping =
        !blank &&
        name !== '' &&
        ((!policy.sendOrganizationHeaders && isOrganizationOrForestHeader(name)) || (!keepRouting && isRoutingHeader(name)));
      if (dropping) removed.push(name);
    }
    if (!dropping) out += line;
  }
  return { headers: out, removed };
}

export interface OwnServer {
  readonly fqdn: string;
  readonly address?: string;
}

/** True when the next hop (host name and/or IP) is one of our organization's servers. */
export function isOwnServer(host: string | undefined, ip: string | undefined, servers: readonly OwnServer[]): boolean {
  const h = host?.toLowerCase().replace(/\.$/, '');
  return servers.some((s) => (h !== undefined && s.fqdn.toLowerCase().replace(/\.$/, '') === h) || (ip !== undefined && s.address !== undefined && s.address === ip));
}

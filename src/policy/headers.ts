/**
 * Message header checks at DATA (reference 2.6 / 2.8): splitting the header block into fields,
 * the hop count (Received fields), and the header firewall that strips organization, forest and
 * routing headers from sessions lacking the permission to set them. Pure.
 */
import type { Permission } from './permissions.js';

export interface HeaderField {
  /** Field name as written. */
  readonly name: string;
  /** The whole field including folded continuation lines, each line ending in CRLF. */
  readonly raw: string;
}

/**
 * Splits a header block (without the blank line that ends it) into fields. Lines may end in CRLF
 * or LF; the result always uses CRLF. A line that is neither a field nor a continuation is kept as
 * a field with an empty name, so nothing is lost.
 */
export function splitHeader(block: string): HeaderField[] {
  const lines = block.split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const out: { name: string; raw: string }[] = [];
  for (const line of lines) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && out.length > 0) {
      out[out.length - 1]!.raw += `${line}\r\n`;
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 && /^[!-9;-~]+$/.test(line.slice(0, colon)) ? line.slice(0, colon) : '';
    out.push({ name, raw: `${line}\r\n` });
  }
  return out;
}

export function countReceived(fields: readonly HeaderField[]): number {
  return fields.filter((f) => f.name.toLowerCase() === 'received').length;
}

/** Would the message, with the Received field we add, exceed maxHopCount? */
export function hopCountExceeded(fields: readonly HeaderField[], maxHopCount: number): boolean {
  return countReceived(fields) + 1 > maxHopCount;
}

/**
 * Received fields written by one of our own servers: their "by" clause names one of `localNames`
 * (this server's and the organization's FQDNs, lower case). A message that has passed through
 * us that often is looping inside the organization.
 */
export function countLocalReceived(fields: readonly HeaderField[], localNames: ReadonlySet<string>): number {
  let n = 0;
  for (const f of fields) {
    if (f.name.toLowerCase() !== 'received') continue;
    // Unfold, drop comments (nested ones from the inside out), then read the "by" clause.
    let text = f.raw.replace(/\r?\n[ \t]+/g, ' ');
    for (let prev = ''; prev !== text; ) {
      prev = text;
      text = text.replace(/\([^()]*\)/g, ' ');
    }
    const by = /\bby\s+([^\s;()]+)/i.exec(text);
    if (by && localNames.has(by[1]!.toLowerCase().replace(/\.$/, ''))) n++;
  }
  return n;
}

/** Would the message, with our Received field, exceed maxLocalHopCount (0 = never refuse)? */
export function localHopCountExceeded(fields: readonly HeaderField[], maxLocalHopCount: number, localNames: ReadonlySet<string>): boolean {
  return maxLocalHopCount > 0 && countLocalReceived(fields, localNames) + 1 > maxLocalHopCount;
}

const ORG = [/^x-mailyard-organization-/i, /^x-ms-exchange-organization-/i];
const FOREST = [/^x-mailyard-forest-/i, /^x-ms-exchange-forest-/i];
const ROUTING = [/^received$/i, /^resent-/i];

/** Which permission, if any, a header field needs in order to be kept. */
export function firewallPermissionFor(name: string): Permission | undefined {
  if (ORG.some((r) => r.test(name))) return 'AcceptOrganizationHeaders';
  if (FOREST.some((r) => r.test(name))) return 'AcceptForestHeaders';
  if (ROUTING.some((r) => r.test(name))) return 'AcceptRoutingHeaders';
  return undefined;
}

/** The header firewall: keeps the fields the session may set, and names the ones it dropped. */
export function applyHeaderFirewall(fields: readonly HeaderField[], perms: ReadonlySet<Permission>): { kept: HeaderField[]; stripped: string[] } {
  const kept: HeaderField[] = [];
  const stripped: string[] = [];
  for (const f of fields) {
    const need = firewallPermissionFor(f.name);
    if (need && !perms.has(need)) stripped.push(f.name);
    else kept.push(f);
  }
  return { kept, stripped };
}

export function hasField(fields: readonly HeaderField[], name: string): boolean {
  const n = name.toLowerCase();
  return fields.some((f) => f.name.toLowerCase() === n);
}

/** The value of the first field with this name, unfolded and trimmed. */
export function fieldValue(fields: readonly HeaderField[], name: string): string | undefined {
  const n = name.toLowerCase();
  const f = fields.find((x) => x.name.toLowerCase() === n);
  return f ? f.raw.slice(f.name.length + 1).replace(/\r?\n[ \t]/g, ' ').trim() : undefined;
}

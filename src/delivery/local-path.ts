/**
 * Where a local recipient's mailbox lives: a Maildir path from a template such as
 * `/var/mail/{domain}/{local}` and an address. Pure (string work only, no file system).
 *
 * Promises:
 * - `+detail` sub-addressing maps to the same mailbox (`ann+news@x` → `ann@x`).
 * - Domain and local part are lower-cased, so `Ann@Contoso.COM` and `ann@contoso.com` share a mailbox
 *   (Exchange matches recipients case-insensitively).
 * - A local part or domain that could leave the root (`/`, `\`, `..`, a leading dot, NUL, control
 *   characters) or is over-long (local part > 64 octets, domain > 255) is refused with a
 *   `550 5.1.3` reply; a path that is accepted always lies strictly under the template's fixed prefix.
 */
import { posix as path } from 'node:path';
import { parseAddress } from '../model/address.js';
import { reply, type SmtpReply } from '../model/reply.js';

export type MailboxPathResult =
  | { readonly ok: true; readonly path: string; readonly local: string; readonly domain: string; readonly detail?: string }
  | { readonly ok: false; readonly reply: SmtpReply; readonly reason: string };

const MAX_LOCAL_OCTETS = 64;
const MAX_DOMAIN_OCTETS = 255;
// C0 controls, DEL and C1 controls: never part of a file name we create.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function refuse(reason: string): MailboxPathResult {
  return { ok: false, reason, reply: reply(550, '5.1.3', `Bad recipient address syntax: ${reason}`) };
}

/** Splits `local+detail` at the first `+` (a leading `+` is part of the name, not a separator). */
export function splitDetail(local: string): { base: string; detail?: string } {
  const plus = local.indexOf('+');
  if (plus <= 0) return { base: local };
  return { base: local.slice(0, plus), detail: local.slice(plus + 1) };
}

/** Why a single path component is unsafe, or undefined when it can be used as a directory name. */
function unsafeComponent(name: string, what: string): string | undefined {
  if (name === '') return `empty ${what}`;
  if (name.includes('\u0000')) return `NUL in ${what}`;
  if (CONTROL.test(name)) return `control character in ${what}`;
  if (name.includes('/') || name.includes('\\')) return `path separator in ${what}`;
  if (name.startsWith('.') || name.includes('..')) return `dots in ${what}`;
  return undefined;
}

/**
 * The mailbox path for `address` under `template` ({domain} and {local} are replaced).
 * The template itself is trusted configuration; only the address is checked.
 */
export function maildirPathFor(template: string, address: string): MailboxPathResult {
  if (address.includes('\u0000')) return refuse('NUL in address');
  const parsed = parseAddress(address);
  if (!parsed) return refuse('no domain');
  if (parsed.literal) return refuse('address literal domain');
  if (Buffer.byteLength(parsed.local, 'utf8') > MAX_LOCAL_OCTETS) return refuse('local part longer than 64 octets');
  if (Buffer.byteLength(parsed.domain, 'utf8') > MAX_DOMAIN_OCTETS) return refuse('domain longer than 255 octets');
  // A quoted local part ("a b"@x) is legal SMTP but has no sensible mailbox directory.
  if (parsed.local.includes('"')) return refuse('quoted local part');
  const { base, detail } = splitDetail(parsed.local);
  const local = base.toLowerCase();
  const domain = parsed.domain.toLowerCase();
  const bad = unsafeComponent(local, 'local part') ?? unsafeComponent(domain, 'domain');
  if (bad) return refuse(bad);

  const firstPlaceholder = template.search(/\{(domain|local)\}/);
  if (firstPlaceholder < 0) return refuse('maildir template has no {domain} or {local}');
  const filled = path.normalize(template.replaceAll('{domain}', domain).replaceAll('{local}', local));
  // Belt and braces: the result must lie strictly under the template's fixed prefix directory.
  const prefix = path.dirname(path.normalize(template.slice(0, firstPlaceholder) + 'x'));
  const under = prefix === '/' ? '/' : `${prefix}/`;
  if (!filled.startsWith(prefix === '.' ? '' : under) || filled.split('/').includes('..')) {
    return refuse('path outside the mailbox root');
  }
  const resolved = filled.replace(/\/+$/, '');
  return detail === undefined ? { ok: true, path: resolved, local, domain } : { ok: true, path: resolved, local, domain, detail };
}

/** Expands `mailboxDelivery.aliases` for one address (one level; +detail and case ignored when matching). */
export function expandAliases(aliases: Readonly<Record<string, string | readonly string[]>>, address: string): string[] {
  const key = aliasKey(address);
  for (const [from, to] of Object.entries(aliases)) {
    if (aliasKey(from) === key) return (typeof to === 'string' ? [to] : [...to]).map((a) => a.trim()).filter((a) => a.length > 0);
  }
  return [address];
}

/** The form used to compare local addresses: +detail removed, all lower case. */
export function aliasKey(address: string): string {
  const parsed = parseAddress(address.trim());
  if (!parsed) return address.trim().toLowerCase();
  return `${splitDetail(parsed.local).base}@${parsed.domain}`.toLowerCase();
}

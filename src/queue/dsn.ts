/**
 * Delivery status notifications (RFC 3464 multipart/report): failure NDRs, delay notices and
 * success/relay notices. Pure: every input (ids, dates, the original's bytes) is a parameter, so
 * the same inputs give the same bytes (golden tests). The manager decides WHETHER to send (NOTIFY,
 * null sender) and submits the result through the Intake with the null sender.
 *
 * The human-readable part is plain English: who, why (the remote server's reply or our reason)
 * and what to do. The original is attached as message/rfc822, or only its header block as
 * text/rfc822-headers when RET=HDRS, for delay/success notices, or when it is too large.
 */
import type { DsnKind, DsnRecipientInfo } from './state.js';

export interface DsnInput {
  readonly kind: DsnKind;
  /** FQDN of this server (Reporting-MTA, From domain fallback). */
  readonly reportingMta: string;
  /** The notice's From address, e.g. postmaster@contoso.com. */
  readonly from: string;
  /** The original envelope sender; never null (no DSN goes to <>). */
  readonly to: string;
  readonly recipients: readonly DsnRecipientInfo[];
  readonly originalSubject?: string;
  readonly originalMessageId?: string;
  readonly envid?: string;
  readonly ret?: 'FULL' | 'HDRS';
  readonly arrivalDate: Date;
  readonly now: Date;
  /** For delay notices: when the server gives up. */
  readonly retryUntil?: Date;
  /** The original message (full) or just its header block when `originalIsHeadersOnly`. */
  readonly original: Buffer;
  readonly originalIsHeadersOnly: boolean;
  readonly boundary: string;
  readonly messageId: string;
}

const ADVICE: readonly [RegExp, string][] = [
  [/^4\.4\.7$/, 'The message could not be delivered before it expired. Check that the address is right, then try sending it again later; if it keeps happening, contact the recipient another way and mention the error above.'],
  [/^5\.1\.[0-9]+$/, 'The address may be misspelled or may no longer exist. Check it and send the message again.'],
  [/^5\.2\.2$/, "The recipient's mailbox is full. Try again later, or contact the recipient another way."],
  [/^5\.3\.4$/, 'The message is too large. Remove or shrink attachments and send it again.'],
  [/^5\.4\.4$/, 'This mail system has no route to the recipient\'s domain. Check the address; if it is correct, ask your mail administrator to check the Send connectors.'],
  [/^5\.4\.6$/, 'The message went round in a mail loop. Ask your mail administrator to check forwarding and routing for this address.'],
  [/^5\.3\.0$/, 'An administrator removed the message from the queue. Contact your mail administrator if you need it delivered.'],
  [/^5\.7\./, "The recipient's mail system refused the message for policy or security reasons. Contact the recipient's administrator if you think this is wrong."],
  [/^5\./, "The recipient's mail system refused the message. Check the address and try again; if the problem continues, contact the recipient's administrator with the error above."],
];

export function adviceFor(status: string): string {
  for (const [re, text] of ADVICE) if (re.test(status)) return text;
  return 'Try sending the message again later. If the problem continues, contact your mail administrator with the error above.';
}

/** RFC 5322 date in UTC: "Mon, 05 Jan 2026 09:00:00 +0000". */
export function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${p(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function wrap(text: string, width = 76, indent = ''): string {
  const out: string[] = [];
  let line = indent;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line.trim().length && line.length + 1 + word.length > width) {
      out.push(line);
      line = indent + word;
    } else line = line.trim().length ? `${line} ${word}` : indent + word;
  }
  if (line.trim().length) out.push(line);
  return out.join('\r\n').replace(/\u0001/g, ' ');
}

/** A phrase that wrap() must not break (dates). */
function nobreak(s: string): string {
  return s.replace(/ /g, '\u0001');
}

function encodeHeaderText(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x20-\x7e]*$/.test(s)) return s;
  return `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;
}

/** Strips CR/LF so header values cannot inject headers. */
function clean(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').trim();
}

function xtextDecode(s: string): string {
  return s.replace(/\+([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

const SUBJECT_PREFIX: Record<DsnKind, string> = { failure: 'Undeliverable', delay: 'Delivery delayed', success: 'Delivered' };

function humanPart(input: DsnInput): string {
  const lines: string[] = [];
  const subj = input.originalSubject ? ` "${clean(input.originalSubject)}"` : '';
  const sent = `sent ${nobreak(rfc5322Date(input.arrivalDate))}`;
  if (input.kind === 'failure') {
    lines.push(wrap(`Your message${subj} (${sent}) could not be delivered to the following ${input.recipients.length === 1 ? 'recipient' : 'recipients'}.`));
  } else if (input.kind === 'delay') {
    lines.push(wrap(`Delivery of your message${subj} (${sent}) is taking longer than expected. This is only a warning: you do not need to do anything yet.`));
    if (input.retryUntil) lines.push('', wrap(`This server will keep trying until ${nobreak(rfc5322Date(input.retryUntil))}. If it still cannot deliver the message by then, you will get another notice.`));
  } else {
    const relayedOnly = input.recipients.every((r) => r.action === 'relayed');
    lines.push(wrap(relayedOnly
      ? `Your message${subj} (${sent}) was passed on to a mail system that does not send delivery notices, so this is the last notice you will get about it.`
      : `Your message${subj} (${sent}) was delivered to the following ${input.recipients.length === 1 ? 'recipient' : 'recipients'}.`));
  }
  lines.push('');
  for (const r of input.recipients) {
    lines.push(`  ${clean(r.address)}`);
    if (input.kind === 'failure') {
      if (r.status === '4.4.7') {
        lines.push(wrap(`Reason: the message expired in the queue (${r.diagnostic ?? '550 4.4.7 QUEUE.Expired; message expired'}).`, 76, '    '));
        if (r.lastError) lines.push(wrap(`Last error: ${clean(r.lastError)}`, 76, '    '));
      } else if (r.remoteMta) {
        lines.push(wrap(`Reason: the server ${clean(r.remoteMta)} replied: ${clean(r.diagnostic ?? r.status)}`, 76, '    '));
      } else {
        lines.push(wrap(`Reason: ${clean(r.diagnostic ?? r.status)}${r.lastError && r.lastError !== r.diagnostic ? ` (${clean(r.lastError)})` : ''}`, 76, '    '));
      }
      lines.push(wrap(`What to do: ${adviceFor(r.status)}`, 76, '    '));
    } else if (input.kind === 'delay') {
      if (r.lastError) lines.push(wrap(`Last error: ${clean(r.lastError)}`, 76, '    '));
    } else if (r.remoteMta) {
      lines.push(wrap(`Accepted by ${clean(r.remoteMta)}${r.diagnostic ? `: ${clean(r.diagnostic)}` : ''}`, 76, '    '));
    }
    lines.push('');
  }
  lines.push(wrap(`This notice was generated by ${input.reportingMta}. The technical details follow.`));
  return `${lines.join('\r\n')}\r\n`;
}

function statusPart(input: DsnInput): string {
  const f: string[] = [`Reporting-MTA: dns; ${input.reportingMta}`];
  if (input.envid) f.push(`Original-Envelope-Id: ${clean(xtextDecode(input.envid))}`);
  f.push(`Arrival-Date: ${rfc5322Date(input.arrivalDate)}`);
  const blocks: string[] = [f.join('\r\n')];
  for (const r of input.recipients) {
    const b: string[] = [];
    if (r.orcpt) {
      const semi = r.orcpt.indexOf(';');
      b.push(`Original-Recipient: ${semi > 0 ? `${r.orcpt.slice(0, semi).toLowerCase()}; ${clean(xtextDecode(r.orcpt.slice(semi + 1)))}` : `rfc822; ${clean(r.orcpt)}`}`);
    }
    b.push(`Final-Recipient: rfc822; ${clean(r.address)}`);
    b.push(`Action: ${r.action}`);
    b.push(`Status: ${r.status}`);
    if (r.remoteMta) b.push(`Remote-MTA: dns; ${clean(r.remoteMta)}`);
    if (r.diagnostic) b.push(`Diagnostic-Code: smtp; ${clean(r.diagnostic)}`);
    if (r.lastAttemptAt !== undefined) b.push(`Last-Attempt-Date: ${rfc5322Date(new Date(r.lastAttemptAt))}`);
    if (input.kind === 'delay' && input.retryUntil) b.push(`Will-Retry-Until: ${rfc5322Date(input.retryUntil)}`);
    blocks.push(b.join('\r\n'));
  }
  return `${blocks.join('\r\n\r\n')}\r\n`;
}

/** Whether the original goes in whole (message/rfc822) or as headers only. */
export function attachFullOriginal(kind: DsnKind, ret: 'FULL' | 'HDRS' | undefined, size: number, maxAttach: number): boolean {
  if (ret === 'HDRS') return false;
  if (kind !== 'failure' && ret !== 'FULL') return false;
  return size <= maxAttach;
}

/** Composes the whole DSN message (headers + body), CRLF line endings. */
export function composeDsn(input: DsnInput): Buffer {
  const b = input.boundary;
  const subject = `${SUBJECT_PREFIX[input.kind]}: ${input.originalSubject ? clean(input.originalSubject) : '(no subject)'}`;
  const human = humanPart(input);
  // eslint-disable-next-line no-control-regex
  const humanIs8bit = !/^[\x00-\x7f]*$/.test(human);
  const headers = [
    `From: Mail Delivery System <${input.from}>`,
    `To: <${clean(input.to)}>`,
    `Subject: ${encodeHeaderText(subject)}`,
    `Date: ${rfc5322Date(input.now)}`,
    `Message-ID: <${input.messageId}>`,
    ...(input.originalMessageId ? [`In-Reply-To: ${clean(input.originalMessageId)}`, `References: ${clean(input.originalMessageId)}`] : []),
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="${b}"`,
    '',
    'This is a MIME-encapsulated delivery status notification.',
    '',
  ].join('\r\n');
  let original = input.original;
  if (input.originalIsHeadersOnly) {
    const s = original.toString('latin1');
    const end = s.indexOf('\r\n\r\n');
    original = end >= 0 ? original.subarray(0, end + 2) : original;
  }
  const origText = original.toString('latin1');
  const parts = [
    `--${b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: ${humanIs8bit ? '8bit' : '7bit'}\r\nContent-Description: Notification\r\n\r\n`,
    human,
    `\r\n--${b}\r\nContent-Type: message/delivery-status\r\nContent-Description: Delivery report\r\n\r\n`,
    statusPart(input),
    `\r\n--${b}\r\nContent-Type: ${input.originalIsHeadersOnly ? 'text/rfc822-headers' : 'message/rfc822'}\r\nContent-Description: ${input.originalIsHeadersOnly ? 'Headers of the original message' : 'Original message'}\r\n\r\n`,
  ];
  const tail = `${origText.endsWith('\r\n') ? '' : '\r\n'}\r\n--${b}--\r\n`;
  return Buffer.concat([Buffer.from(headers + parts.join(''), 'utf8'), original, Buffer.from(tail, 'latin1')]);
}

/**
 * Decides, once and for every delivery agent, what a remote reply or a local error means for a
 * recipient: delivered, deferred (retry later) or failed (bounce now), and under which
 * FailureCategory. Pure and table-driven: no I/O, no clock.
 *
 * Promises:
 * - a 2xx reply is the only thing that yields "delivered";
 * - anything this module cannot place is "deferred" (a bug delays mail, it never bounces it);
 * - every deferred/failed result carries an SmtpReply, synthesized for local errors, so DSNs and
 *   queue views always have something to show;
 * - 421 (service closing) is always deferred, whatever its enhanced code says.
 */
import { parseReply, reply, type SmtpReply } from '../model/reply.js';
import type { FailureCategory } from '../model/outcome.js';

/** Where in the SMTP dialogue a reply was received; some codes mean different things per stage. */
export type SmtpStage = 'connect' | 'greeting' | 'ehlo' | 'starttls' | 'auth' | 'mail' | 'rcpt' | 'data' | 'message' | 'rset' | 'unknown';

/** What went wrong (or right), as the SMTP agent observed it. */
export type DeliveryFailure =
  | { readonly kind: 'reply'; readonly reply: SmtpReply | string; readonly stage?: SmtpStage }
  /** A socket-level error; code is the errno-style code (ECONNREFUSED, ETIMEDOUT, ...). */
  | { readonly kind: 'socket'; readonly code: string; readonly message?: string; readonly stage?: SmtpStage }
  /** TLS could not be established or the certificate did not pass the connector's policy. */
  | { readonly kind: 'tls'; readonly code?: string; readonly message: string }
  /** A DNS lookup outcome that prevents delivery. */
  | { readonly kind: 'dns'; readonly result: 'nxdomain' | 'nodata' | 'nullmx' | 'temporary'; readonly name: string; readonly detail?: string };

export interface Classification {
  readonly kind: 'delivered' | 'deferred' | 'failed';
  readonly category: FailureCategory;
  readonly reply: SmtpReply;
  /** One line for logs, queue views and LastError. */
  readonly detail: string;
}

export interface ClassifyOptions {
  /** Send connector ErrorPolicies=DowngradeDnsFailures: permanent DNS errors become deferrals. */
  readonly downgradeDnsFailures?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Remote replies

interface EnhancedRule {
  /** Matches "X.Y.Z" where the pattern may end early: "5.1" matches 5.1.*, "5.7.1" only itself. */
  readonly prefix: string;
  readonly category: FailureCategory;
}

/** Enhanced status codes (RFC 3463 subjects/details) to categories; most specific first. */
const ENHANCED_RULES: readonly EnhancedRule[] = [
  { prefix: '.4.6', category: 'loop' }, // routing loop
  { prefix: '.4.14', category: 'loop' }, // EXO hop count
  { prefix: '.5.3', category: 'protocol' }, // too many recipients
  { prefix: '.3.4', category: 'size' }, // message too big for system
  { prefix: '.2.3', category: 'size' }, // message length exceeds administrative limit
  { prefix: '.2.2', category: 'recipient' }, // mailbox full
  { prefix: '.4.4', category: 'dns' }, // unable to route
  { prefix: '.4.3', category: 'dns' }, // directory server / routing server failure
  { prefix: '.1', category: 'recipient' }, // addressing status
  { prefix: '.2', category: 'recipient' }, // mailbox status
  { prefix: '.3', category: 'other' }, // mail system status
  { prefix: '.4', category: 'connect' }, // network and routing status
  { prefix: '.5', category: 'protocol' }, // mail delivery protocol status
  { prefix: '.6', category: 'protocol' }, // message content or media status
  { prefix: '.7', category: 'policy' }, // security or policy status
];

interface TextRule {
  readonly pattern: RegExp;
  readonly category: FailureCategory;
}

/** For replies without an enhanced code: wording seen in the wild. First match wins. */
const TEXT_RULES: readonly TextRule[] = [
  { pattern: /too many (recipients|rcpts)/i, category: 'protocol' },
  { pattern: /\b(too (large|big)|size (limit|exceeds)|exceeds? (the )?(fixed |maximum )?(message )?size|message size)/i, category: 'size' },
  { pattern: /\b(mailbox (is )?full|quota|over ?quota|insufficient (storage|space))/i, category: 'recipient' },
  { pattern: /\b(loop|hop count)/i, category: 'loop' },
  {
    pattern: /\b(user unknown|unknown user|no such (user|mailbox|recipient)|mailbox (unavailable|not found|does not exist)|recipient (address )?rejected|address rejected|does not exist|invalid recipient|not our customer|unrouteable address|user not found|recipient not found)/i,
    category: 'recipient',
  },
  { pattern: /\b(spam|blocked|black ?list|block ?list|blacklisted|rbl|spamhaus|reputation|policy|denied|relay(ing)? (access )?(denied|not permitted)|not permitted|unable to relay|authenticat|starttls|tls required|must issue a starttls)/i, category: 'policy' },
  { pattern: /\b(greylist|graylist|try (again )?later|temporar)/i, category: 'other' },
];

function categoryFor(r: SmtpReply, stage: SmtpStage | undefined): FailureCategory {
  if (r.enhanced) {
    const detail = r.enhanced.slice(1); // ".1.1"
    for (const rule of ENHANCED_RULES) {
      if (detail === rule.prefix || detail.startsWith(`${rule.prefix}.`)) return rule.category;
    }
  }
  if (r.code === 421 && !r.enhanced) return 'connect'; // the server is going away: a connection matter
  for (const rule of TEXT_RULES) if (rule.pattern.test(r.text)) return rule.category;
  // Basic codes (RFC 5321 4.2.3) when nothing else tells.
  switch (r.code) {
    case 421:
      return 'connect';
    case 450:
    case 550:
    case 551:
    case 553:
      return stage === 'mail' ? 'policy' : 'recipient';
    case 452:
    case 552:
      return stage === 'rcpt' ? 'protocol' : 'size';
    case 451:
    case 554:
      return stage === 'data' || stage === 'message' ? 'other' : 'protocol';
    case 500:
    case 501:
    case 502:
    case 503:
    case 504:
    case 555:
      return 'protocol';
    case 530:
    case 535:
    case 538:
      return 'policy';
    default:
      return 'other';
  }
}

function toReply(input: SmtpReply | string): SmtpReply | undefined {
  return typeof input === 'string' ? parseReply(input) : input;
}

function oneLine(r: SmtpReply): string {
  return `${r.code}${r.enhanced ? ` ${r.enhanced}` : ''} ${r.text.replace(/\s*[\r\n]+\s*/g, ' ')}`.trim();
}

/** Classifies a remote reply. A 2xx is delivered; 4xx deferred; 5xx failed, with the exceptions below. */
export function classifyReply(input: SmtpReply | string, stage?: SmtpStage): Classification {
  const r = toReply(input);
  if (!r) {
    const text = typeof input === 'string' ? input : input.text;
    return {
      kind: 'deferred',
      category: 'protocol',
      reply: reply(451, '4.5.0', `Unparseable reply from remote server: ${text.slice(0, 200)}`),
      detail: `unparseable reply: ${text.slice(0, 200)}`,
    };
  }
  const category = categoryFor(r, stage);
  const detail = oneLine(r);
  const cls = Math.floor(r.code / 100);
  if (cls === 2) return { kind: 'delivered', category: 'other', reply: r, detail };
  // 421: the server is going away; never final, whatever else the reply says.
  if (r.code === 421) return { kind: 'deferred', category, reply: r, detail };
  // RFC 5321 4.5.3.1.10: a 552 to RCPT TO meaning "too many recipients" is to be treated as 452.
  if (r.code === 552 && stage === 'rcpt' && category === 'protocol') return { kind: 'deferred', category, reply: r, detail };
  if (cls === 4) return { kind: 'deferred', category, reply: r, detail };
  if (cls === 5) {
    // A 5xx reply with a 4.x.x enhanced code is contradictory; the safe reading is "try again".
    if (r.enhanced?.startsWith('4.')) return { kind: 'deferred', category, reply: r, detail };
    return { kind: 'failed', category, reply: r, detail };
  }
  // 1xx/3xx where a completion was expected: the dialogue is out of step.
  return { kind: 'deferred', category: 'protocol', reply: r, detail: `unexpected reply: ${detail}` };
}

// ---------------------------------------------------------------------------------------------
// Local errors

interface CodeRule {
  readonly codes: readonly string[];
  readonly category: FailureCategory;
  readonly reply: SmtpReply;
}

/** errno-style codes of sockets and TLS. All of them are transient for mail purposes. */
const SOCKET_RULES: readonly CodeRule[] = [
  { codes: ['ECONNREFUSED'], category: 'connect', reply: reply(441, '4.4.1', 'Connection refused') },
  { codes: ['ETIMEDOUT', 'ETIMEOUT', 'CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'SOCKET_TIMEOUT'], category: 'connect', reply: reply(441, '4.4.1', 'Connection timed out') },
  { codes: ['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL'], category: 'connect', reply: reply(441, '4.4.1', 'Remote host unreachable') },
  { codes: ['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ECONNECTION'], category: 'connect', reply: reply(451, '4.4.2', 'Connection dropped') },
  { codes: ['ENOENT', 'EACCES', 'EMFILE', 'ENFILE', 'EIO', 'ENOSPC', 'ESTREAM'], category: 'local-io', reply: reply(451, '4.3.0', 'Local error while reading the message') },
];

function socketClassification(code: string, message: string | undefined, stage: SmtpStage | undefined): Classification {
  const upper = code.toUpperCase();
  const rule = SOCKET_RULES.find((r) => r.codes.includes(upper));
  const where = stage && stage !== 'unknown' ? ` during ${stage}` : '';
  const detail = `${upper}${where}${message ? `: ${message}` : ''}`;
  if (rule) return { kind: 'deferred', category: rule.category, reply: reply(rule.reply.code, rule.reply.enhanced, `${rule.reply.text}${where}`), detail };
  return { kind: 'deferred', category: 'other', reply: reply(451, '4.4.0', `Delivery error${where} (${upper})`), detail };
}

function tlsClassification(code: string | undefined, message: string): Classification {
  const detail = `TLS: ${code ? `${code}: ` : ''}${message}`;
  return { kind: 'deferred', category: 'tls', reply: reply(454, '4.7.5', `TLS negotiation failed: ${message}`), detail };
}

function dnsClassification(f: Extract<DeliveryFailure, { kind: 'dns' }>, opts: ClassifyOptions): Classification {
  const extra = f.detail ? ` (${f.detail})` : '';
  switch (f.result) {
    case 'nullmx': {
      const r = reply(556, '5.1.10', `Recipient domain ${f.name} does not accept mail (null MX)`);
      if (opts.downgradeDnsFailures) return { kind: 'deferred', category: 'dns', reply: reply(451, '4.1.10', r.text), detail: `null MX for ${f.name}` };
      return { kind: 'failed', category: 'dns', reply: r, detail: `null MX for ${f.name}` };
    }
    case 'nxdomain':
    case 'nodata': {
      const what = f.result === 'nxdomain' ? 'nonexistent domain' : 'no mail exchanger or address records';
      const text = `SMTPSEND.DNS.NonExistentDomain; ${what} ${f.name}${extra}`;
      if (opts.downgradeDnsFailures) return { kind: 'deferred', category: 'dns', reply: reply(451, '4.1.2', text), detail: `${what}: ${f.name}` };
      return { kind: 'failed', category: 'dns', reply: reply(550, '5.1.2', text), detail: `${what}: ${f.name}` };
    }
    case 'temporary':
      return { kind: 'deferred', category: 'dns', reply: reply(451, '4.4.3', `DNS query failed for ${f.name}${extra}`), detail: `DNS temporary failure for ${f.name}${extra}` };
  }
}

/** The single entry point: any observation → an outcome kind, category and reply. */
export function classify(f: DeliveryFailure, opts: ClassifyOptions = {}): Classification {
  switch (f.kind) {
    case 'reply':
      return classifyReply(f.reply, f.stage);
    case 'socket':
      if (/^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH|ETLS)/i.test(f.code)) return tlsClassification(f.code, f.message ?? f.code);
      return socketClassification(f.code, f.message, f.stage);
    case 'tls':
      return tlsClassification(f.code, f.message);
    case 'dns':
      return dnsClassification(f, opts);
  }
}

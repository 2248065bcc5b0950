/** One SMTP reply type for receive refusals, remote replies and DSN diagnostics. */

export type ReplyClass = 2 | 4 | 5;

export interface SmtpReply {
  readonly code: number;
  readonly enhanced?: string; // "5.7.54"
  readonly text: string; // without the code and enhanced code
}

export function reply(code: number, enhanced: string | undefined, text: string): SmtpReply {
  return enhanced ? { code, enhanced, text } : { code, text };
}

export function formatReply(r: SmtpReply): string {
  return `${r.code} ${r.enhanced ? `${r.enhanced} ` : ''}${r.text}`;
}

/** Parses "550 5.1.1 User unknown" (also multi-line replies joined by newlines). */
export function parseReply(line: string): SmtpReply | undefined {
  const m = /^([2-5]\d\d)[ -]?(?:([245]\.\d{1,3}\.\d{1,3})\s+)?([\s\S]*)$/.exec(line.trim());
  if (!m) return undefined;
  return reply(Number(m[1]), m[2], m[3] ?? '');
}

export function replyClass(r: SmtpReply): ReplyClass {
  return Math.floor(r.code / 100) as ReplyClass;
}

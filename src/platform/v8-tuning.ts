/**
 * V8 settings for the long-running daemon, applied once by runDaemon (with node's own flags and
 * NODE_OPTIONS) before any mail flows.
 *
 * V8 first runs a function as bytecode and optimizes it only after the function has used up an
 * "interrupt budget" of executed bytecode. With the default budget a freshly started Mailyard
 * takes about three seconds of traffic before its SMTP, queue and delivery paths run optimized
 * code, and relays about a third fewer messages in that time (docs/performance.md, sixth round).
 * A quarter of the default budget gets there in about one second, at the cost of a few MB more
 * compiled code. It changes when code is optimized, never what it does.
 *
 * The budget is a V8 flag, not a Node option, so NODE_OPTIONS cannot carry it; it is set here with
 * v8.setFlagsFromString. An administrator who starts node with their own --interrupt-budget keeps
 * it.
 */
import { setFlagsFromString } from 'node:v8';

/** A quarter of V8's default (67,584 in Node 20). */
export const DAEMON_INTERRUPT_BUDGET = 16_384;

/** The V8 flags the daemon sets, given the flags node was started with (pure, for tests). */
export function daemonV8Flags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  if (given.some((a) => /^--interrupt[-_]budget(=|$)/.test(a))) return [];
  return [`--interrupt-budget=${DAEMON_INTERRUPT_BUDGET}`];
}

export function applyV8Flags(flags: readonly string[]): void {
  for (const flag of flags) setFlagsFromString(flag);
}

/**
 * What a Receive connector session knows about itself beyond smtp-server's session object: the
 * connector it belongs to, the principal and the permissions computed from it, TLS details,
 * counters for protocol errors and logon failures, and its protocol log sequence.
 */
import type { ReceiveConnector } from '../config/defaults.js';
import type { SmtpReply } from '../model/reply.js';
import type { TlsInfo } from '../model/envelope.js';
import type { SessionId } from '../model/ids.js';
import type { ProtocolEventKind, ProtocolLogService, ProtocolLogSink } from '../model/protocol.js';
import { formatEndpoint } from '../model/ip-range.js';
import { formatPermissions, permissionsFor, type Permission, type Principal } from '../policy/permissions.js';

export class SessionContext {
  readonly startedAt = new Date();
  principal: Principal = { kind: 'anonymous' };
  permissions: ReadonlySet<Permission> = new Set();
  tls: TlsInfo | undefined;
  protocolErrors = 0;
  logonFailures = 0;
  messages = 0;
  /** Set by the connection: sends a catalogue reply on this session (421s also close it). */
  sendReply: (r: SmtpReply) => void = () => {};
  #seq = 0;
  readonly localText: string;
  readonly remoteText: string;

  constructor(
    readonly id: SessionId,
    readonly connector: ReceiveConnector,
    readonly connectorId: string,
    readonly local: { readonly address: string; readonly port: number },
    readonly remote: { readonly address: string; readonly port: number },
    private readonly sink: ProtocolLogSink,
    private readonly service: ProtocolLogService | undefined,
  ) {
    this.localText = formatEndpoint(local.address, local.port);
    this.remoteText = formatEndpoint(remote.address, remote.port);
  }

  get authUser(): string | undefined {
    return this.principal.kind === 'user' ? this.principal.user : undefined;
  }

  /** true when the connector logs Verbose: callers skip building log texts otherwise. */
  get logging(): boolean {
    return this.service !== undefined;
  }

  /** Writes one protocol log event when the connector logs Verbose. */
  log(event: ProtocolEventKind, data: string, context?: string): void {
    if (!this.service) return;
    this.sink.write(this.service, {
      timestamp: new Date(),
      connectorId: this.connectorId,
      sessionId: this.id,
      sequence: this.#seq++,
      localEndpoint: this.localText,
      remoteEndpoint: this.remoteText,
      event,
      data,
      ...(context !== undefined ? { context } : {}),
    });
  }

  /** Recomputes the permissions for the current principal and logs them (`Set Session Permissions`). */
  refreshPermissions(): void {
    this.permissions = permissionsFor(this.connector, this.principal);
    if (this.logging) this.log('*', formatPermissions(this.permissions), 'Set Session Permissions');
  }
}

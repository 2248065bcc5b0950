/**
 * One Receive connector at run time: its smtp-server instance and the handlers that turn each SMTP
 * step into a policy question and the verdict into a reply (STYLE 2.1: the front end decides
 * nothing itself). Built anew from each config snapshot; sessions keep the runtime they started
 * with, so a reload never changes the rules under a session in flight.
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { Config, ReceiveConnector } from '../config/defaults.js';
import type { DsnNotify, Envelope, Recipient } from '../model/envelope.js';
import type { Intake } from '../model/intake.js';
import type { ProtocolLogService, ProtocolLogSink } from '../model/protocol.js';
import type { SmtpReply } from '../model/reply.js';
import { newSessionId } from '../model/ids.js';
import { parseAddress } from '../model/address.js';
import { admitsSender, type PressureLevel } from '../policy/back-pressure.js';
import { checkMailFrom, checkRcpt } from '../policy/checks.js';
import { classifyDomain } from '../policy/accepted-domains.js';
import { certificateNames, principalFromCertificate } from '../policy/peer-identity.js';
import { REPLIES, queuedReply } from '../policy/replies.js';
import { MailyardSmtpServer, sessionContexts, type MailyardConnection } from './connection.js';
import { receiveData } from './data.js';
import { messageIdFor, receivedHeader, rfc5322Date } from './received.js';
import { SessionContext } from './session.js';
import type { SharedLimits } from './limits.js';

export type VerifyLogin = (login: string, password: string) => Promise<boolean>;
/** true = exists, false = unknown (550 5.1.1), undefined = cannot tell now (451). */
export type RecipientLookup = (address: string) => Promise<boolean | undefined>;

export interface ReceiveTls {
  readonly key: Buffer;
  readonly cert: Buffer;
  readonly ca?: Buffer;
  readonly certificates?: readonly { readonly name: string; readonly key: Buffer; readonly cert: Buffer }[];
}

/** The default certificate of a connector (Exchange picks it by the connector's FQDN) and the SNI table. */
export function connectorCertificates(
  tls: ReceiveTls,
  connector: Pick<ReceiveConnector, 'fqdn' | 'tlsCertificateName'>,
): { key: Buffer; cert: Buffer; sni: Record<string, { key: Buffer; cert: Buffer }> } {
  const named = (n: string | undefined) => (n ? tls.certificates?.find((x) => x.name.toLowerCase() === n.toLowerCase()) : undefined);
  const own = named(connector.tlsCertificateName) ?? named(connector.fqdn);
  const sni: Record<string, { key: Buffer; cert: Buffer }> = {};
  for (const x of tls.certificates ?? []) sni[x.name.toLowerCase()] = { key: x.key, cert: x.cert };
  return { key: own?.key ?? tls.key, cert: own?.cert ?? tls.cert, sni };
}

/** What the Receive service is built from (the daemon supplies it). */
export interface ReceiveDeps {
  readonly config: Config;
  readonly intake: Intake;
  readonly logger: Logger;
  readonly protocolLog: ProtocolLogSink;
  /**
   * Server certificate; `ca` (tls.caFile) enables client certificates for server/partner peers.
   * `certificates` (tls.certificates) are served by SNI name, and a connector whose
   * tlsCertificateName or fqdn names one of them uses it as its default certificate.
   */
  readonly tls?: ReceiveTls;
  /** Verifies an SMTP AUTH login (e.g. UsersStore.verify); without it AUTH is not offered. */
  readonly users?: VerifyLogin;
  /** Recipient validation for Authoritative domains when mailboxDelivery.recipientValidation is on. */
  readonly recipientExists?: RecipientLookup;
  /** Back pressure level, asked at every MAIL FROM (policy/back-pressure.ts); Normal without it. */
  readonly pressure?: () => PressureLevel;
}

export interface ConnectorDeps extends ReceiveDeps {
  readonly shared: SharedLimits;
}

type SmtpErr = Error & { responseCode: number };
const smtpError = (r: SmtpReply): SmtpErr => Object.assign(new Error(r.enhanced ? `${r.enhanced} ${r.text}` : r.text), { responseCode: r.code });

/** How Mailyard chooses the protocol log file set of a Receive connector. */
export function receiveLogService(c: ReceiveConnector): ProtocolLogService | undefined {
  if (c.protocolLoggingLevel !== 'Verbose') return undefined;
  return c.transportRole === 'HubTransport' ? 'HubReceive' : 'FrontEndReceive';
}

export class ConnectorRuntime {
  readonly server: MailyardSmtpServer;
  readonly connectorId: string;
  readonly tlsOffered: boolean;
  readonly logger: Logger;
  /** FQDNs that mark a Received field as written by us (for maxLocalHopCount). */
  readonly #localNames: ReadonlySet<string>;

  constructor(
    readonly connector: ReceiveConnector,
    private readonly deps: ConnectorDeps,
  ) {
    const c = connector;
    this.connectorId = `${deps.config.server.name}\\${c.name}`;
    this.#localNames = new Set(
      [deps.config.server.fqdn, c.fqdn, ...deps.config.organization.servers.map((s) => s.fqdn), ...deps.config.receiveConnectors.map((r) => r.fqdn)].map((n) =>
        n.toLowerCase().replace(/\.$/, ''),
      ),
    );
    this.logger = deps.logger.child({ connector: c.name });
    const wantsTls = c.authMechanism.includes('Tls') || c.requireTLS;
    this.tlsOffered = wantsTls && !!deps.tls && c.tlsMode === 'starttls';
    const basic = c.authMechanism.includes('BasicAuth') || c.authMechanism.includes('BasicAuthRequireTLS');
    const authOffered = basic && !!deps.users;
    const authBeforeTls = c.authMechanism.includes('BasicAuth') && !c.authMechanism.includes('BasicAuthRequireTLS');
    const disabled = ['WIZ', 'SHELL', 'KILL', 'XCLIENT', 'XFORWARD', 'HELP'];
    if (!this.tlsOffered) disabled.push('STARTTLS');
    this.server = new MailyardSmtpServer(
      {
        name: c.fqdn,
        logger: false,
        disableReverseLookup: true,
        authOptional: true,
        allowInsecureAuth: true,
        authMethods: ['LOGIN', 'PLAIN'],
        disabledCommands: disabled,
        hideSTARTTLS: !this.tlsOffered,
        hideDSN: !c.deliveryStatusNotificationEnabled,
        hideENHANCEDSTATUSCODES: !c.enhancedStatusCodesEnabled,
        hideREQUIRETLS: true,
        secure: c.tlsMode === 'implicit',
        socketTimeout: Number.isFinite(c.connectionInactivityTimeout) ? c.connectionInactivityTimeout : 2_147_000_000,
        maxCommandLength: 4096,
        heloResponse: '%s Hello %s',
        minVersion: deps.config.tls.minVersion,
        ...(deps.tls
          ? (() => {
              const certs = connectorCertificates(deps.tls, c);
              return { key: certs.key, cert: certs.cert, ...(Object.keys(certs.sni).length ? { sniOptions: certs.sni } : {}) };
            })()
          : {}),
        // Client certificates prove organization servers and Domain Secure partners; they are
        // asked for (never required) where a CA is configured and the connector admits such peers.
        ...(deps.tls?.ca && this.#wantsPeerCertificates() ? { requestCert: true, rejectUnauthorized: false, ca: deps.tls.ca } : {}),
        onConnect: (session, cb) => this.onConnect(session, cb),
        onSecure: (socket, session, cb) => this.onSecure(socket, session, cb),
        onAuth: (auth, session, cb) => this.onAuth(auth.method, auth.username ?? '', auth.password ?? '', session, cb),
        onMailFrom: (address, session, cb) => this.onMailFrom(address.address, address.args || {}, session, cb),
        onRcptTo: (address, session, cb) => this.#guard('RCPT TO', cb, () => this.onRcptTo(address.address, session, cb)),
        onData: (stream, session, cb) =>
          this.#guard('DATA', cb, () => this.onData(stream, session, cb), () => {
            if (stream.readable) stream.resume();
          }),
      },
      {
        connector: c,
        greetingDelayMs: c.greetingDelay,
        banner: () => (c.banner ? c.banner.replace(/^220[ -]?/, '') : `${c.fqdn} Mailyard ESMTP MAIL Service ready at ${rfc5322Date(new Date())}`),
        tlsOffered: this.tlsOffered,
        authOffered,
        authBeforeTls,
        isLockedOut: (ctx) => deps.shared.logonLockedOut(ctx.remote.address, c.maxLogonFailures),
      },
    );
    this.server.on('error', (err: Error) => this.logger.debug({ err, code: 'SMTP_SESSION_ERROR' }, 'session error'));
  }

  /**
   * Starts a session on a socket this connector was selected for. `opened` runs once the session
   * exists (after the handshake for implicit TLS); `closed` runs exactly once when it ends, with
   * undefined when no session ever started (failed handshake).
   */
  accept(
    socket: net.Socket,
    local: { address: string; port: number },
    remote: { address: string; port: number },
    hooks: { opened(c: MailyardConnection): void; closed(c: MailyardConnection | undefined): void },
  ): void {
    const ctx = new SessionContext(newSessionId(), this.connector, this.connectorId, local, remote, this.deps.protocolLog, receiveLogService(this.connector));
    if (this.connector.tlsMode === 'implicit') {
      this.server._upgrade(socket, (err, tlsSocket) => {
        if (err || !tlsSocket) {
          this.logger.info({ code: 'TLS_HANDSHAKE_FAILED', err, remote: ctx.remoteText }, 'implicit TLS handshake failed');
          socket.destroy();
          hooks.closed(undefined);
          return;
        }
        hooks.opened(this.server.connectSession(tlsSocket, ctx, hooks.closed));
      });
      return;
    }
    hooks.opened(this.server.connectSession(socket, ctx, hooks.closed));
  }

  #wantsPeerCertificates(): boolean {
    const g = this.connector.permissionGroups;
    return this.connector.domainSecureEnabled || g.includes('ExchangeServers') || g.includes('ExchangeLegacyServers') || g.includes('Partners');
  }

  /** Runs an async handler; a bug inside it becomes a 451 for the client and a log line, never a crash. */
  #guard(step: string, cb: (err?: Error | null) => void, run: () => Promise<void>, cleanup?: () => void): void {
    run().catch((err: unknown) => {
      this.logger.error({ code: 'RECEIVE_HANDLER_FAILED', err, step }, 'internal error in a Receive connector handler');
      cleanup?.();
      cb(smtpError(REPLIES.transactionFailed));
    });
  }

  #ctx(session: object): SessionContext {
    const ctx = sessionContexts.get(session);
    if (!ctx) throw new Error('session without context');
    return ctx;
  }

  private onConnect(session: object, cb: (err?: Error | null) => void): void {
    const ctx = this.#ctx(session);
    const c = this.connector;
    const counts = this.deps.shared.connectionCounts(c.name, ctx.remote.address);
    if (counts.total > c.maxInboundConnection) {
      this.logger.warn({ code: 'RECEIVE_CONNECTION_LIMIT', remote: ctx.remoteText, limit: c.maxInboundConnection }, 'connection refused: connector limit');
      return cb(smtpError(REPLIES.tooManyConnections));
    }
    // MaxInboundConnectionPercentagePerSource: one source may hold this share of the connections
    // still free (counting its own); only meaningful with a finite maxInboundConnection.
    const shareLimit = Number.isFinite(c.maxInboundConnection)
      ? Math.max(1, Math.floor((c.maxInboundConnectionPercentagePerSource / 100) * (c.maxInboundConnection - counts.total + counts.fromSource)))
      : Number.POSITIVE_INFINITY;
    if (counts.fromSource > c.maxInboundConnectionPerSource || counts.fromSource > shareLimit) {
      this.logger.warn({ code: 'RECEIVE_SOURCE_LIMIT', remote: ctx.remoteText, limit: Math.min(c.maxInboundConnectionPerSource, shareLimit) }, 'connection refused: per-source limit');
      return cb(smtpError(REPLIES.tooManyConnectionsFromSource));
    }
    if (c.authMechanism.includes('ExternalAuthoritative')) ctx.principal = { kind: 'externallySecured' };
    ctx.refreshPermissions();
    cb();
  }

  private onSecure(socket: net.Socket | tls.TLSSocket, session: object, cb: (err?: Error | null) => void): void {
    const ctx = this.#ctx(session);
    const s = socket as tls.TLSSocket;
    const cipher = typeof s.getCipher === 'function' ? s.getCipher() : undefined;
    const protocol = (typeof s.getProtocol === 'function' ? s.getProtocol() : null) ?? 'unknown';
    const peer = s.authorized && typeof s.getPeerCertificate === 'function' ? s.getPeerCertificate() : undefined;
    const subject = peer && Object.keys(peer).length ? certificateNames(peer).join(' ') : undefined;
    ctx.tls = { protocol, cipher: cipher?.standardName ?? cipher?.name ?? 'unknown', authorized: !!s.authorized, ...(subject ? { peerCertificateSubject: subject } : {}) };
    ctx.log('*', '', `TLS protocol ${protocol} negotiation succeeded using cipher ${ctx.tls.cipher}`);
    // RFC 3207: everything learnt before TLS is forgotten, the identity included.
    if (ctx.principal.kind === 'user') ctx.principal = { kind: 'anonymous' };
    if (peer && s.authorized) {
      const who = principalFromCertificate({
        names: certificateNames(peer),
        organizationServers: this.deps.config.organization.servers,
        domainSecureEnabled: this.connector.domainSecureEnabled,
        domainSecureList: this.deps.config.transportService.tlsReceiveDomainSecureList,
      });
      if (who) {
        ctx.principal = { kind: who.kind };
        ctx.log('*', who.name, who.kind === 'server' ? 'Client certificate proves an organization server' : 'Client certificate proves a Domain Secure partner');
        this.logger.info({ code: 'TLS_PEER_AUTHENTICATED', peer: who.name, principal: who.kind, remote: ctx.remoteText }, 'TLS client certificate accepted');
      }
    }
    ctx.refreshPermissions();
    cb();
  }

  private onAuth(method: string, login: string, password: string, session: object, cb: (err: Error | null | undefined, response?: { user: string }) => void): void {
    const ctx = this.#ctx(session);
    const users = this.deps.users;
    const c = this.connector;
    if (!users) return cb(smtpError(REPLIES.authNotOffered));
    users(login, password).then(
      (ok) => {
        if (ok) {
          const user = login.trim().toLowerCase();
          ctx.principal = { kind: 'user', user };
          ctx.log('*', user, `Inbound AUTH ${method} succeeded`);
          this.logger.info({ code: 'AUTH_OK', user, remote: ctx.remoteText, session: ctx.id }, 'authenticated');
          ctx.refreshPermissions();
          return cb(null, { user });
        }
        ctx.logonFailures++;
        const fromSource = this.deps.shared.recordLogonFailure(ctx.remote.address, login);
        ctx.log('*', '', `Inbound AUTH ${method} failed because of LogonDenied`);
        this.logger.warn({ code: 'AUTH_FAILED', user: login.slice(0, 256), remote: ctx.remoteText, session: ctx.id, failures: ctx.logonFailures }, 'authentication failed');
        cb(smtpError(REPLIES.authFailed));
        if (c.maxLogonFailures > 0 && (ctx.logonFailures >= c.maxLogonFailures || fromSource >= c.maxLogonFailures)) {
          ctx.sendReply(REPLIES.tooManyLogonFailures);
        }
      },
      (err: unknown) => {
        this.logger.error({ code: 'USERS_FILE_ERROR', err }, 'cannot verify a login: users file unreadable');
        cb(smtpError({ code: 454, enhanced: '4.7.0', text: 'Temporary authentication failure' }));
      },
    );
  }

  private onMailFrom(address: string, args: Record<string, string | true>, session: object, cb: (err?: Error | null) => void): void {
    const ctx = this.#ctx(session);
    const c = this.connector;
    const pressure = this.deps.pressure?.() ?? 'Normal';
    if (!admitsSender(pressure, ctx.principal.kind)) {
      ctx.log('*', '', `Back pressure ${pressure}: no new mail is accepted from this session now`);
      return cb(smtpError(REPLIES.insufficientResources));
    }
    const size = typeof args.SIZE === 'string' ? Number(args.SIZE) : undefined;
    const v = checkMailFrom({
      permissions: ctx.permissions,
      principal: ctx.principal.kind,
      tls: !!ctx.tls,
      requireTLS: c.requireTLS,
      sender: address === '' ? null : address,
      ...(size !== undefined ? { declaredSize: size } : {}),
      maxMessageSize: c.maxMessageSize,
      acceptedDomains: this.deps.config.acceptedDomains,
      ...(ctx.authUser ? { authUser: ctx.authUser } : {}),
    });
    if (v.kind === 'reject') {
      this.logger.info({ code: 'MAIL_FROM_REFUSED', reason: v.reason, remote: ctx.remoteText, session: ctx.id }, 'MAIL FROM refused');
      return cb(smtpError(v.reply));
    }
    const src = c.messageRateSource;
    const now = Date.now();
    const keys = src === 'None' ? [] : src === 'User' ? [ctx.authUser ? `u:${ctx.authUser}` : `ip:${ctx.remote.address}`] : src === 'IPAddress' ? [`ip:${ctx.remote.address}`] : [`ip:${ctx.remote.address}`, ...(ctx.authUser ? [`u:${ctx.authUser}`] : [])];
    for (const k of keys) {
      if (!this.deps.shared.rate.take(`${c.name}|${k}`, c.messageRateLimit, now)) {
        this.logger.warn({ code: 'MESSAGE_RATE_LIMIT', source: k, remote: ctx.remoteText }, 'message rate limit reached');
        return cb(smtpError(REPLIES.rateLimited));
      }
    }
    ctx.messages++;
    ctx.log('*', `${ctx.id};${ctx.startedAt.toISOString()};${ctx.messages}`, 'receiving message');
    cb();
  }

  private async onRcptTo(address: string, session: { envelope: { rcptTo: unknown[] } }, cb: (err?: Error | null) => void): Promise<void> {
    const ctx = this.#ctx(session);
    const c = this.connector;
    const cfg = this.deps.config;
    const v = checkRcpt({
      permissions: ctx.permissions,
      recipient: address,
      accepted: session.envelope.rcptTo.length,
      maxRecipientsPerMessage: c.maxRecipientsPerMessage,
      acceptedDomains: cfg.acceptedDomains,
      rejectReservedTopLevelRecipientDomains: c.rejectReservedTopLevelRecipientDomains,
      rejectReservedSecondLevelRecipientDomains: c.rejectReservedSecondLevelRecipientDomains,
      rejectSingleLabelRecipientDomains: c.rejectSingleLabelRecipientDomains,
    });
    if (v.kind === 'reject') {
      this.logger.info({ code: 'RCPT_REFUSED', reason: v.reason, remote: ctx.remoteText, session: ctx.id }, 'RCPT TO refused');
      return cb(smtpError(v.reply));
    }
    const lookup = this.deps.recipientExists;
    const a = parseAddress(address);
    if (lookup && cfg.mailboxDelivery.recipientValidation && a && classifyDomain(cfg.acceptedDomains, a.domain)?.domainType === 'Authoritative') {
      let exists: boolean | undefined;
      try {
        exists = await lookup(address);
      } catch {
        exists = undefined;
      }
      if (exists === false) return cb(smtpError(REPLIES.userUnknown));
      if (exists === undefined) return cb(smtpError(REPLIES.lookupFailed));
    }
    cb();
  }

  private async onData(
    stream: NodeJS.ReadableStream & import('node:stream').Readable,
    session: import('smtp-server').SMTPServerSession,
    cb: (err?: Error | null, message?: string) => void,
  ): Promise<void> {
    const ctx = this.#ctx(session);
    const c = this.connector;
    const env = session.envelope;
    const now = new Date();
    const mailFrom = env.mailFrom ? env.mailFrom.address : '';
    const recipients: Recipient[] = env.rcptTo.map((r) => {
      const notify = r.dsn?.notify;
      return {
        address: r.address,
        ...(r.dsn?.orcpt ? { orcpt: r.dsn.orcpt } : {}),
        ...(notify ? { notify: notify.includes('NEVER') ? [] : (notify as DsnNotify[]) } : {}),
      };
    });
    const mailArgs = (env.mailFrom && env.mailFrom.args) || {};
    const declared = typeof mailArgs.SIZE === 'string' ? Number(mailArgs.SIZE) : undefined;
    const envelope: Envelope = {
      mailFrom: mailFrom === '' ? null : mailFrom,
      recipients,
      body: (env.bodyType ?? '7bit').toLowerCase() === '8bitmime' ? '8BITMIME' : '7BIT',
      smtputf8: !!env.smtpUtf8,
      ...(env.dsn?.ret === 'FULL' || env.dsn?.ret === 'HDRS' ? { ret: env.dsn.ret } : {}),
      ...(env.dsn?.envid ? { envid: env.dsn.envid } : {}),
      ...(declared !== undefined ? { declaredSize: declared } : {}),
    };
    const prepend = receivedHeader({
      helo: session.hostNameAppearsAs || '',
      clientIp: ctx.remote.address,
      serverFqdn: c.fqdn,
      esmtp: session.openingCommand === 'EHLO',
      ...(ctx.tls ? { tls: ctx.tls } : {}),
      ...(ctx.authUser ? { authUser: ctx.authUser } : {}),
      showAuthUser: c.addAuthenticatedUserToReceived,
      id: `${ctx.id}.${session.transaction}`,
      recipients: recipients.map((r) => r.address),
      date: now,
    });
    const outcome = await receiveData({
      source: stream,
      maxMessageSize: ctx.permissions.has('BypassMessageSizeLimit') ? Number.POSITIVE_INFINITY : c.maxMessageSize,
      maxHeaderSize: c.maxHeaderSize,
      maxHopCount: c.maxHopCount,
      maxLocalHopCount: c.maxLocalHopCount,
      localNames: this.#localNames,
      permissions: ctx.permissions,
      rejectBareLf: c.bareLinefeedRejectionEnabled,
      prepend,
      ...(ctx.principal.kind === 'user' ? { addIfMissing: { messageId: messageIdFor(randomBytes(12).toString('hex'), c.fqdn), date: rfc5322Date(now) } } : {}),
      accept: (body) =>
        this.deps.intake.accept(
          {
            envelope,
            source: {
              kind: 'smtp',
              connector: c.name,
              client: ctx.remote,
              server: ctx.local,
              ...(session.hostNameAppearsAs ? { helo: session.hostNameAppearsAs } : {}),
              ...(ctx.tls ? { tls: ctx.tls } : {}),
              ...(ctx.authUser ? { authUser: ctx.authUser } : {}),
            },
            receivedAt: now,
          },
          body,
        ),
    });
    if (outcome.kind === 'rejected') {
      ctx.log('*', '', `message refused: ${outcome.reason}`);
      this.logger.info({ code: 'DATA_REFUSED', reason: outcome.reason, remote: ctx.remoteText, session: ctx.id, err: outcome.cause }, 'message refused');
      return cb(smtpError(outcome.reply));
    }
    if (outcome.stripped.length) ctx.log('*', outcome.stripped.join(' '), 'Header firewall removed fields');
    this.logger.info({ code: 'MESSAGE_RECEIVED', id: outcome.result.id, size: outcome.result.size, session: ctx.id, remote: ctx.remoteText }, 'message queued');
    const r = queuedReply(outcome.internetMessageId, outcome.result.id, c.fqdn);
    cb(null, `${r.enhanced} ${r.text}`);
  }
}

/**
 * The configuration schema: the single definition of every key of mailyard.yaml, its type, its
 * default and its meaning (the `describe` text feeds docs/configuration.md). Key names follow
 * Exchange's parameter names in camelCase. Defaults that depend on other keys (usage presets,
 * the five default Receive connectors, per-usage sizes) are applied afterwards in defaults.ts.
 */
import { z } from 'zod';
import { parseDuration, parseSize } from '../model/units.js';

const sizeInput = z.union([z.number(), z.string()]);
const durationInput = z.union([z.number(), z.string()]);

/** Parses a size input to bytes (Infinity for unlimited); the same function object tags size keys for `config show`. */
export function sizeTransform(v: string | number, ctx: z.core.$RefinementCtx<string | number>): number {
  const n = parseSize(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `bad size ${JSON.stringify(v)}: use bytes or a number with B, KB, MB, GB, TB, or "unlimited"` });
    return z.NEVER;
  }
  return n;
}

/** Parses a duration input to milliseconds; the same function object tags duration keys for `config show`. */
export function durationTransform(v: string | number, ctx: z.core.$RefinementCtx<string | number>): number {
  const n = parseDuration(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `bad duration ${JSON.stringify(v)}: use e.g. "30s", "5m", "4h", "2d" or "d.hh:mm:ss"` });
    return z.NEVER;
  }
  return n;
}

/** A size: bytes, "35MB", "512KB", "unlimited". Parsed to bytes (Infinity for unlimited). */
export const size = () => sizeInput.transform(sizeTransform);

/** A duration: "30s", "5m", "4h", "2d", or Exchange's "d.hh:mm:ss". Parsed to milliseconds. */
export const duration = () => durationInput.transform(durationTransform);

/** A count that may be "unlimited" (Infinity). */
export const countOrUnlimited = (min = 0) =>
  z.union([z.number().int().min(min), z.literal('unlimited')]).transform((v) => (v === 'unlimited' ? Number.POSITIVE_INFINITY : v));

export const AUTH_MECHANISMS = ['None', 'Tls', 'Integrated', 'BasicAuth', 'BasicAuthRequireTLS', 'ExchangeServer', 'ExternalAuthoritative'] as const;
export const PERMISSION_GROUPS = ['None', 'AnonymousUsers', 'ExchangeUsers', 'ExchangeServers', 'ExchangeLegacyServers', 'Partners', 'Custom'] as const;
export const RECEIVE_PERMISSIONS = [
  'SMTPSubmit',
  'SMTPAcceptAnyRecipient',
  'SMTPAcceptAnySender',
  'SMTPAcceptAuthoritativeDomainSender',
  'SMTPAcceptAuthenticationFlag',
  'BypassAntiSpam',
  'BypassMessageSizeLimit',
  'AcceptRoutingHeaders',
  'AcceptOrganizationHeaders',
  'AcceptForestHeaders',
] as const;
export type ReceivePermission = (typeof RECEIVE_PERMISSIONS)[number];
export const RECEIVE_USAGES = ['Client', 'Custom', 'Internal', 'Internet', 'Partner'] as const;
export const SEND_USAGES = ['Custom', 'Internal', 'Internet', 'Partner'] as const;
export const TRANSPORT_ROLES = ['FrontendTransport', 'HubTransport'] as const;
export const SMART_HOST_AUTH = ['None', 'BasicAuth', 'BasicAuthRequireTLS', 'ExchangeServer', 'ExternalAuthoritative'] as const;
export const TLS_AUTH_LEVELS = ['EncryptionOnly', 'CertificateValidation', 'DomainValidation'] as const;
export const LOGGING_LEVELS = ['None', 'Verbose'] as const;
export const DOMAIN_TYPES = ['Authoritative', 'InternalRelay', 'ExternalRelay'] as const;
export const MESSAGE_RATE_SOURCES = ['None', 'User', 'IPAddress', 'All'] as const;

const permissionName = z.string().describe('a receive permission: Exchange log spelling (SMTPAcceptAnyRecipient) or AD name (ms-Exch-SMTP-Accept-Any-Recipient)');

/** An address space: "TYPE:ADDRESS;COST", "contoso.com", or { type, address, cost }. Parsed in routing/address-space.ts. */
const addressSpace = z.union([
  z.string().min(1),
  z.strictObject({
    type: z.string().default('SMTP').describe('address type: SMTP, or any other text (FAX, X400, ...)'),
    address: z.string().min(1).describe('for SMTP: "*", "contoso.com" or "*.contoso.com"'),
    cost: z.number().int().min(1).max(100).default(1).describe('1-100; the lower cost wins among equally specific matches'),
  }),
]);

const connectorName = z.string().min(1).max(64);

export const receiveConnectorSchema = z.strictObject({
  name: connectorName.describe('unique name, shown in protocol logs as SERVER\\name'),
  enabled: z.boolean().default(true).describe('false stops the connector from accepting connections; it stays in the file'),
  usage: z.enum(RECEIVE_USAGES).optional().describe('creation preset that fills authMechanism, permissionGroups and bindings when omitted'),
  comment: z.string().optional().describe('free text for administrators'),
  transportRole: z.enum(TRANSPORT_ROLES).optional().describe('FrontendTransport or HubTransport; decides the protocol log folder'),
  bindings: z.array(z.string()).min(1).optional().describe('local "IP:port" pairs; 0.0.0.0 and [::] mean every address'),
  remoteIPRanges: z.array(z.string()).min(1).optional().describe('clients served: single IP, CIDR or first-last; default all addresses'),
  authMechanism: z.array(z.enum(AUTH_MECHANISMS)).min(1).optional().describe('how clients may secure and authenticate sessions (see docs); default from usage, else Tls'),
  permissionGroups: z.array(z.enum(PERMISSION_GROUPS)).min(1).optional().describe('who may use the connector and with which permissions; default from usage, else None'),
  permissions: z.array(permissionName).default([]).describe('extra receive permissions granted to every session of this connector'),
  requireTLS: z.boolean().default(false).describe('refuse MAIL FROM until the session is encrypted; needs Tls'),
  tlsMode: z.enum(['starttls', 'implicit']).default('starttls').describe('implicit = TLS from the first byte (port 465 style)'),
  domainSecureEnabled: z.boolean().default(false).describe('mutual TLS with partners listed in transportService.tlsReceiveDomainSecureList (Domain Secure)'),
  fqdn: z.string().optional().describe('name in the banner, EHLO reply and Received header; default server.fqdn'),
  banner: z.string().optional().describe('greeting; must start with 220'),
  greetingDelay: duration().prefault(0).describe('early-talker check: wait this long before the greeting and reject clients that talk first (0 = greet at once)'),
  maxMessageSize: size().prefault('36MB').describe('largest message accepted, advertised in SIZE'),
  maxHeaderSize: size().prefault('256KB').describe('largest header section accepted'),
  maxRecipientsPerMessage: z.number().int().min(1).max(512000).optional().describe('default 200 (5000 on the "Default SERVER" connector)'),
  maxHopCount: z.number().int().min(1).max(500).default(30).describe('reject a message with more Received headers than this'),
  maxLocalHopCount: z.number().int().min(0).max(50).default(8).describe('reject a message with more Received headers naming this server than this (0 = never)'),
  maxInboundConnection: countOrUnlimited(1).prefault(5000).describe('concurrent connections on this connector'),
  maxInboundConnectionPerSource: countOrUnlimited(1).optional().describe('default 20 (unlimited on "Default SERVER")'),
  maxInboundConnectionPercentagePerSource: z.number().int().min(1).max(100).optional().describe('default 2 (100 on "Default SERVER")'),
  connectionTimeout: duration().prefault('10m').describe('absolute lifetime of a session; must be longer than connectionInactivityTimeout'),
  connectionInactivityTimeout: duration().prefault('5m').describe('idle time before the session is closed'),
  maxProtocolErrors: countOrUnlimited(0).prefault(5).describe('protocol errors before the session is closed'),
  maxLogonFailures: z.number().int().min(0).max(10).default(3).describe('failed AUTH attempts before the session is closed (0 = never)'),
  tarpitInterval: duration().prefault('5s').describe('delay on refusals to unauthenticated clients (0 = none)'),
  authTarpitInterval: duration().prefault('5s').describe('delay on failed AUTH replies (0 = none)'),
  messageRateLimit: countOrUnlimited(1).optional().describe('messages per minute per source; default unlimited (5 on client connectors)'),
  messageRateSource: z.enum(MESSAGE_RATE_SOURCES).optional().describe('what counts as one source for messageRateLimit; default IPAddress (User on client connectors)'),
  requireEHLODomain: z.boolean().default(false).describe('close the session when EHLO/HELO carries no domain'),
  sizeEnabled: z.enum(['Enabled', 'Disabled', 'EnabledWithoutValue']).default('Enabled').describe('advertise SIZE with the limit (Enabled), without it (EnabledWithoutValue) or not at all'),
  eightBitMimeEnabled: z.boolean().default(true).describe('advertise 8BITMIME'),
  pipeliningEnabled: z.boolean().default(true).describe('advertise PIPELINING'),
  deliveryStatusNotificationEnabled: z.boolean().default(true).describe('advertise DSN'),
  enhancedStatusCodesEnabled: z.boolean().default(true).describe('advertise ENHANCEDSTATUSCODES'),
  smtpUtf8Enabled: z.boolean().default(true).describe('advertise SMTPUTF8 (internationalized addresses)'),
  chunkingEnabled: z.boolean().default(false).describe('BDAT/CHUNKING; not supported by the SMTP library yet, so it must stay false'),
  bareLinefeedRejectionEnabled: z.boolean().default(false).describe('reject message data with a line feed not preceded by a carriage return'),
  rejectReservedTopLevelRecipientDomains: z.boolean().default(false).describe('reject recipients in .test, .example, .invalid and .localhost (5.1.4)'),
  rejectReservedSecondLevelRecipientDomains: z.boolean().default(false).describe('reject recipients in example.com, example.net and example.org (5.1.5)'),
  rejectSingleLabelRecipientDomains: z.boolean().default(false).describe('reject recipients in single-label domains such as user@contoso (5.1.6)'),
  protocolLoggingLevel: z.enum(LOGGING_LEVELS).optional().describe('Verbose writes the protocol log; default None (Verbose on Default Frontend)'),
  addAuthenticatedUserToReceived: z.boolean().default(false).describe('name the authenticated user in the Received header'),
  tlsCertificateName: z.string().optional().describe('the certificate (by name in tls.certificates) to offer instead of the default one'),
});

export const sendConnectorSchema = z.strictObject({
  name: connectorName.describe('unique name among Send, Foreign and Delivery Agent connectors'),
  enabled: z.boolean().default(true).describe('false takes the connector out of routing'),
  comment: z.string().optional().describe('free text for administrators'),
  usage: z.enum(SEND_USAGES).default('Custom').describe('sets the default maxMessageSize: Custom/Internet/Partner 35MB, Internal unlimited'),
  addressSpaces: z.array(addressSpace).min(1).describe('the recipient domains this connector serves: "TYPE:ADDRESS;COST" (e.g. "SMTP:*.contoso.com;2") or { type, address, cost }'),
  dnsRoutingEnabled: z.boolean().optional().describe('MX routing; default true unless smartHosts is set'),
  smartHosts: z.array(z.string().min(1)).optional().describe('IP, [IP] or FQDN, each with an optional :port'),
  port: z.number().int().min(0).max(65535).default(25).describe('TCP port used to reach the smart hosts'),
  smartHostAuthMechanism: z.enum(SMART_HOST_AUTH).default('None').describe('how to authenticate to the smart hosts; BasicAuth* need authenticationCredential'),
  authenticationCredential: z
    .strictObject({
      username: z.string().min(1).describe('user name for smart host AUTH'),
      passwordFile: z.string().min(1).describe('file holding the password (read at start; never logged)'),
    })
    .optional().describe('user name and a file holding the password for smart host AUTH'),
  requireTLS: z.boolean().default(false).describe('send only over TLS; a next hop that cannot do TLS is a transient failure'),
  tlsAuthLevel: z.enum(TLS_AUTH_LEVELS).optional().describe('how the remote certificate is checked; only with requireTLS'),
  tlsDomain: z.string().optional().describe('the name the certificate must carry for DomainValidation (default: the recipient domain)'),
  tlsCertificateName: z.string().optional().describe('client certificate to present (by name in tls.certificates)'),
  ignoreStartTls: z.boolean().default(false).describe('never use STARTTLS even when offered; cannot be combined with requireTLS'),
  domainSecureEnabled: z.boolean().default(false).describe('mutual TLS with the destination domain (Domain Secure)'),
  sourceTransportServers: z.array(z.string()).optional().describe('servers that send through this connector; default the local server'),
  isScopedConnector: z.boolean().default(false).describe('true: only servers in the same site may use this connector'),
  maxMessageSize: size().optional().describe('largest message routed through this connector; default by usage (Internal unlimited, others 35MB)'),
  connectionInactivityTimeout: duration().prefault('10m').describe('idle time before an outbound session is closed'),
  smtpMaxMessagesPerConnection: z.number().int().min(1).default(20).describe('messages sent over one connection before it is closed and reopened'),
  forceHELO: z.boolean().default(false).describe('send HELO instead of EHLO'),
  fqdn: z.string().optional().describe('name sent in EHLO/HELO; default server.fqdn'),
  sourceIPAddress: z.string().optional().describe('local address to connect from (default: chosen by the system)'),
  errorPolicies: z.enum(['Default', 'DowngradeDnsFailures', 'DowngradeCustomFailures', 'UpgradeCustomFailures']).default('Default').describe('how DNS and custom failures are classified (Default: NDR on permanent errors)'),
  protocolLoggingLevel: z.enum(LOGGING_LEVELS).default('None').describe('Verbose writes the Send protocol log for this connector'),
});

export const foreignConnectorSchema = z.strictObject({
  name: connectorName.describe('unique name among Send, Foreign and Delivery Agent connectors'),
  enabled: z.boolean().default(true).describe('false takes the connector out of routing'),
  comment: z.string().optional().describe('free text for administrators'),
  addressSpaces: z.array(addressSpace).min(1).describe('the recipients this connector serves; any address type (FAX, X400, SMTP, ...)'),
  dropDirectory: z.string().min(1).describe('folder the gateway reads message files from; not created automatically'),
  dropDirectoryQuota: size().prefault('unlimited').describe('total size of files waiting in the drop directory; when reached, delivery waits'),
  maxMessageSize: size().prefault('unlimited').describe('largest message written to the drop directory'),
  relayDsnRequired: z.boolean().default(false).describe('send a relay DSN to the sender when the file is written'),
  sourceTransportServers: z.array(z.string()).optional().describe('servers that write to this drop directory; default the local server'),
  isScopedConnector: z.boolean().default(false).describe('true: only servers in the same site may use this connector'),
});

export const deliveryAgentConnectorSchema = z.strictObject({
  name: connectorName.describe('unique name among Send, Foreign and Delivery Agent connectors'),
  enabled: z.boolean().default(true).describe('false takes the connector out of routing'),
  comment: z.string().optional().describe('free text for administrators'),
  addressSpaces: z.array(addressSpace).min(1).describe('the recipients this connector serves; any address type'),
  deliveryProtocol: z.enum(['http', 'lmtp', 'maildir']).describe('the delivery agent that serves the connector: http, lmtp or maildir'),
  url: z.string().optional().describe('http: the URL to POST each message to'),
  host: z.string().optional().describe('lmtp: host'),
  port: z.number().int().min(1).max(65535).optional().describe('lmtp: TCP port (default 24)'),
  socket: z.string().optional().describe('lmtp: UNIX socket path'),
  maildirRoot: z.string().optional().describe('maildir: path template with {domain} and {local}'),
  maxConcurrentConnections: z.number().int().min(1).default(5).describe('concurrent deliveries through this connector'),
  maxMessagesPerConnection: z.number().int().min(1).default(20).describe('messages per connection before it is closed and reopened'),
  timeout: duration().prefault('1m').describe('how long one delivery may take before it counts as a transient failure'),
  maxMessageSize: size().prefault('unlimited').describe('largest message delivered through this connector'),
  sourceTransportServers: z.array(z.string()).optional().describe('servers that deliver through this connector; default the local server'),
  isScopedConnector: z.boolean().default(false).describe('true: only servers in the same site may use this connector'),
  protocolLoggingLevel: z.enum(LOGGING_LEVELS).default('Verbose').describe('Verbose writes the Delivery protocol log for this connector'),
});

export const acceptedDomainSchema = z.strictObject({
  domainName: z.string().min(1).describe('"contoso.com" or "*.contoso.com" (the domain and all its subdomains)'),
  domainType: z.enum(DOMAIN_TYPES).default('Authoritative').describe('Authoritative (all recipients are here), InternalRelay (some are here, the rest is relayed), ExternalRelay (none are here)'),
  default: z.boolean().default(false).describe('the default domain (postmaster address, DSN sender); at most one'),
  name: z.string().optional().describe('display name (default the domain name)'),
});

export const transportServiceSchema = z
  .strictObject({
    pickupDirectoryPath: z.string().optional().describe('folder polled every 5 s for .eml files to submit (no checks apply: protect it); unset disables'),
    replayDirectoryPath: z.string().optional().describe('folder polled every 5 s for Replay-format files (X-Sender/X-Receiver); unset disables'),
    pickupDirectoryMaxMessagesPerMinute: z.number().int().min(1).default(100).describe('files taken per minute from each of the Pickup and Replay directories'),
    pickupDirectoryMaxHeaderSize: size().prefault('64KB').describe('largest header section accepted from the Pickup directory'),
    pickupDirectoryMaxRecipientsPerMessage: z.number().int().min(1).default(100).describe('most recipients accepted per Pickup file'),
    queueGlitchRetryCount: z.number().int().min(0).max(15).default(4).describe('immediate retries after a connection glitch'),
    queueGlitchRetryInterval: duration().prefault('1m').describe('spacing of glitch retries'),
    transientFailureRetryInterval: duration().prefault('5m').describe('spacing of the retries that follow the glitch retries'),
    transientFailureRetryCount: z.number().int().min(0).max(15).default(6).describe('number of those retries (0 = go straight to outboundConnectionFailureRetryInterval)'),
    outboundConnectionFailureRetryInterval: duration().prefault('10m').describe('spacing of every later retry of a failing next hop'),
    messageRetryInterval: duration().prefault('15m').describe('retry interval of single messages in Retry while their queue is otherwise up'),
    messageExpirationTimeout: duration().prefault('2d').describe('how long a message may wait before it is returned with an NDR'),
    delayNotificationTimeout: duration().prefault('4h').describe('when the (single) delay notification is sent to the sender'),
    queueMaxIdleTime: duration().prefault('3m').describe('an empty delivery queue is removed after this long'),
    maxOutboundConnections: countOrUnlimited(1).prefault(1000).describe('outbound SMTP connections in total'),
    maxPerDomainOutboundConnections: countOrUnlimited(1).prefault(20).describe('outbound SMTP connections per next hop'),
    maxConcurrentMailboxDeliveries: z.number().int().min(1).max(256).default(20).describe('concurrent deliveries to mailboxes (maildir or LMTP)'),
    poisonMessageDetectionEnabled: z.boolean().default(true).describe('move messages that crashed the service poisonThreshold times to the Poison queue'),
    poisonThreshold: z.number().int().min(1).max(10).default(2).describe('crashes while a message was in flight before it counts as poison'),
    unreachableAction: z.enum(['queue', 'ndr']).default('queue').describe('what happens to recipients no connector serves: wait in Unreachable (queue) or NDR at once (ndr)'),
    externalDsnMaxMessageAttachSize: size().prefault('10MB').describe('largest original message attached in full to a DSN; larger ones get headers only'),
    tlsReceiveDomainSecureList: z.array(z.string()).default([]).describe('partner domains accepted for mutual TLS (Domain Secure) on Receive connectors'),
    receiveProtocolLogMaxAge: duration().prefault('30d').describe('Receive protocol logs older than this are deleted'),
    receiveProtocolLogMaxDirectorySize: size().prefault('250MB').describe('Receive protocol log folder size limit; oldest files are deleted first'),
    receiveProtocolLogMaxFileSize: size().prefault('10MB').describe('a Receive protocol log file is closed at this size'),
    sendProtocolLogMaxAge: duration().prefault('30d').describe('Send protocol logs older than this are deleted'),
    sendProtocolLogMaxDirectorySize: size().prefault('250MB').describe('Send protocol log folder size limit; oldest files are deleted first'),
    sendProtocolLogMaxFileSize: size().prefault('10MB').describe('a Send protocol log file is closed at this size'),
    messageTrackingLogEnabled: z.boolean().default(true).describe('write the message tracking log'),
    messageTrackingLogMaxAge: duration().prefault('30d').describe('tracking logs older than this are deleted'),
    messageTrackingLogMaxDirectorySize: size().prefault('1000MB').describe('tracking log folder size limit; oldest files are deleted first'),
    messageTrackingLogMaxFileSize: size().prefault('10MB').describe('a tracking log file is closed at this size'),
    shutdownTimeout: duration().prefault('30s').describe('how long SIGTERM waits for sessions and deliveries in flight'),
    fsyncEnabled: z.boolean().default(true).describe('fsync spool files before acknowledging; never turn off in production'),
    backPressure: z
      .strictObject({
        enabled: z.boolean().default(true).describe('refuse new mail (452 4.3.1) while the server is short of disk space or holds too many messages'),
        minimumFreeDiskSpace: size().prefault('100MB').describe("free space on the spool's file system below which all new mail is refused (High); below twice this, anonymous senders are refused (Medium); 0 turns the check off"),
        maxQueuedMessages: countOrUnlimited(1).prefault(100_000).describe('messages in the queue at which all new mail is refused (High); from 75% of it anonymous senders are refused (Medium)'),
        checkInterval: duration().prefault('2s').describe('how often disk space and queue length are checked'),
      })
      .prefault({})
      .describe('back pressure: stop taking new mail before a resource runs out, keep delivering'),
  })
  .prefault({});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      name: z.string().min(1).max(15).default('MAILYARD').describe('NetBIOS-style server name used in default connector names and logs'),
      fqdn: z.string().min(1).default('localhost').describe('EHLO/HELO name and banner host'),
      site: z.string().default('Default-First-Site').describe('the site this server is in, for scoped connectors and site-link costs'),
      dataDir: z.string().default('/var/lib/mailyard').describe('queue spool (and default maildir root)'),
      logDir: z.string().default('/var/log/mailyard').describe('protocol logs and message tracking logs'),
      logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').describe('level of the JSON operational log on stdout'),
      admin: z
        .strictObject({
          listen: z.string().default('127.0.0.1:8025').describe('"IP:port" of the admin API and /metrics'),
          allowNonLoopback: z.boolean().default(false).describe('must be true to bind the admin API to a non-loopback address'),
        })
        .prefault({})
        .describe('the loopback HTTP endpoint used by `mailyard queue ...` and Prometheus'),
    })
    .prefault({})
    .describe('this server'),
  dns: z
    .strictObject({
      servers: z.array(z.string()).optional().describe('"IP" or "IP:port"; default the system resolvers'),
      timeout: duration().prefault('5s').describe('how long one DNS query may take'),
    })
    .prefault({})
    .describe('the resolver used for MX and address lookups'),
  tls: z
    .strictObject({
      certFile: z.string().optional().describe('PEM certificate (chain) offered with STARTTLS and implicit TLS'),
      keyFile: z.string().optional().describe('PEM private key of certFile'),
      caFile: z.string().optional().describe('CA bundle for verifying client and server certificates'),
      certificates: z
        .array(
          z.strictObject({
            name: z.string().describe('the host name it serves (SNI); also the name tlsCertificateName refers to, and a Receive connector whose fqdn equals it presents it by default'),
            certFile: z.string().describe('PEM certificate (chain)'),
            keyFile: z.string().describe('PEM private key'),
          }),
        )
        .default([])
        .describe('further certificates, chosen by connectors (tlsCertificateName) or SNI'),
      minVersion: z.enum(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('oldest TLS version accepted or offered'),
    })
    .prefault({})
    .describe('certificates; files are read when the daemon starts'),
  acceptedDomains: z.array(acceptedDomainSchema).default([]).describe('the domains this organization accepts mail for'),
  users: z
    .strictObject({ file: z.string().optional().describe('YAML file of accounts with salted password hashes, written by `mailyard user add`') })
    .prefault({})
    .describe('accounts for SMTP AUTH (permission group ExchangeUsers)'),
  mailboxDelivery: z
    .strictObject({
      type: z.enum(['maildir', 'lmtp']).default('maildir').describe('write maildirs, or hand messages to an LMTP server (e.g. Dovecot)'),
      maildirRoot: z.string().optional().describe('path template: {domain}, {local}; default DATADIR/mail/{domain}/{local}'),
      lmtp: z
        .strictObject({
          host: z.string().optional().describe('LMTP server host'),
          port: z.number().int().optional().describe('LMTP server port (default 24)'),
          socket: z.string().optional().describe('LMTP UNIX socket path, instead of host'),
        })
        .optional()
        .describe('where the LMTP server is, for type lmtp'),
      recipientValidation: z.boolean().default(false).describe('reject unknown recipients of Authoritative domains at RCPT TO (550 5.1.1)'),
      aliases: z
        .record(z.string(), z.union([z.string(), z.array(z.string())]))
        .default({})
        .describe('address -> address(es) expanded by the categorizer'),
    })
    .prefault({})
    .describe('delivery to recipients of Authoritative domains'),
  organization: z
    .strictObject({
      servers: z
        .array(
          z.strictObject({
            name: z.string().min(1).describe('server name, as its own server.name'),
            fqdn: z.string().min(1).describe('its FQDN (EHLO name, certificate name)'),
            site: z.string().default('Default-First-Site').describe('its site'),
            address: z.string().optional().describe('IP address to reach it (default: resolve fqdn)'),
          }),
        )
        .default([])
        .describe('the servers sharing this configuration'),
      siteLinks: z
        .array(
          z.strictObject({
            sites: z.array(z.string()).length(2).describe('the two sites linked'),
            cost: z.number().int().min(1).describe('link cost, added to address space costs in routing'),
          }),
        )
        .default([])
        .describe('costs between sites'),
    })
    .prefault({})
    .describe('several servers sharing this file'),
  receiveConnectors: z
    .array(receiveConnectorSchema)
    .optional()
    .describe('inbound SMTP listeners; absent: the five Exchange defaults for server.name'),
  sendConnectors: z.array(sendConnectorSchema).default([]).describe('outbound SMTP routes, by address space'),
  foreignConnectors: z.array(foreignConnectorSchema).default([]).describe('routes to non-SMTP gateways through drop directories'),
  deliveryAgentConnectors: z.array(deliveryAgentConnectorSchema).default([]).describe('routes to non-SMTP systems through delivery agents'),
  transportService: transportServiceSchema.describe('queues, retries, pickup and logs of the transport service'),
});

export type ParsedConfig = z.infer<typeof configSchema>;
export type ParsedReceiveConnector = z.infer<typeof receiveConnectorSchema>;
export type ParsedSendConnector = z.infer<typeof sendConnectorSchema>;
export type ForeignConnector = z.infer<typeof foreignConnectorSchema>;
export type DeliveryAgentConnector = z.infer<typeof deliveryAgentConnectorSchema>;
export type AcceptedDomain = z.infer<typeof acceptedDomainSchema>;
export type TransportService = z.infer<typeof transportServiceSchema>;
export type AddressSpaceInput = z.infer<typeof addressSpace>;
export type AuthMechanism = (typeof AUTH_MECHANISMS)[number];
export type PermissionGroup = (typeof PERMISSION_GROUPS)[number];

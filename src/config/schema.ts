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

/** A size: bytes, "35MB", "512KB", "unlimited". Parsed to bytes (Infinity for unlimited). */
export const size = () =>
  sizeInput.transform((v, ctx) => {
    const n = parseSize(v);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: `bad size ${JSON.stringify(v)}: use bytes or a number with B, KB, MB, GB, TB, or "unlimited"` });
      return z.NEVER;
    }
    return n;
  });

/** A duration: "30s", "5m", "4h", "2d", or Exchange's "d.hh:mm:ss". Parsed to milliseconds. */
export const duration = () =>
  durationInput.transform((v, ctx) => {
    const n = parseDuration(v);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: `bad duration ${JSON.stringify(v)}: use e.g. "30s", "5m", "4h", "2d" or "d.hh:mm:ss"` });
      return z.NEVER;
    }
    return n;
  });

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
  z.strictObject({ type: z.string().default('SMTP'), address: z.string().min(1), cost: z.number().int().min(1).max(100).default(1) }),
]);

const connectorName = z.string().min(1).max(64);

export const receiveConnectorSchema = z.strictObject({
  name: connectorName.describe('unique name, shown in protocol logs as SERVER\\name'),
  enabled: z.boolean().default(true),
  usage: z.enum(RECEIVE_USAGES).optional().describe('creation preset that fills authMechanism, permissionGroups and bindings when omitted'),
  comment: z.string().optional(),
  transportRole: z.enum(TRANSPORT_ROLES).optional().describe('FrontendTransport or HubTransport; decides the protocol log folder'),
  bindings: z.array(z.string()).min(1).optional().describe('local "IP:port" pairs; 0.0.0.0 and [::] mean every address'),
  remoteIPRanges: z.array(z.string()).min(1).optional().describe('clients served: single IP, CIDR or first-last; default all addresses'),
  authMechanism: z.array(z.enum(AUTH_MECHANISMS)).min(1).optional(),
  permissionGroups: z.array(z.enum(PERMISSION_GROUPS)).min(1).optional(),
  permissions: z.array(permissionName).default([]).describe('extra receive permissions granted to every session of this connector'),
  requireTLS: z.boolean().default(false),
  tlsMode: z.enum(['starttls', 'implicit']).default('starttls').describe('implicit = TLS from the first byte (port 465 style)'),
  domainSecureEnabled: z.boolean().default(false),
  fqdn: z.string().optional().describe('name in the banner, EHLO reply and Received header; default server.fqdn'),
  banner: z.string().optional().describe('greeting; must start with 220'),
  greetingDelay: duration().prefault(0).describe('early-talker check: wait this long before the greeting and reject clients that talk first (0 = greet at once)'),
  maxMessageSize: size().prefault('36MB'),
  maxHeaderSize: size().prefault('256KB'),
  maxRecipientsPerMessage: z.number().int().min(1).max(512000).optional().describe('default 200 (5000 on the Default <Server> connector)'),
  maxHopCount: z.number().int().min(1).max(500).default(30),
  maxLocalHopCount: z.number().int().min(0).max(50).default(8),
  maxInboundConnection: countOrUnlimited(1).prefault(5000),
  maxInboundConnectionPerSource: countOrUnlimited(1).optional().describe('default 20 (unlimited on Default <Server>)'),
  maxInboundConnectionPercentagePerSource: z.number().int().min(1).max(100).optional().describe('default 2 (100 on Default <Server>)'),
  connectionTimeout: duration().prefault('10m'),
  connectionInactivityTimeout: duration().prefault('5m'),
  maxProtocolErrors: countOrUnlimited(0).prefault(5),
  maxLogonFailures: z.number().int().min(0).max(10).default(3),
  tarpitInterval: duration().prefault('5s'),
  authTarpitInterval: duration().prefault('5s'),
  messageRateLimit: countOrUnlimited(1).optional().describe('messages per minute per source; default unlimited (5 on client connectors)'),
  messageRateSource: z.enum(MESSAGE_RATE_SOURCES).optional(),
  requireEHLODomain: z.boolean().default(false),
  sizeEnabled: z.enum(['Enabled', 'Disabled', 'EnabledWithoutValue']).default('Enabled'),
  eightBitMimeEnabled: z.boolean().default(true),
  pipeliningEnabled: z.boolean().default(true),
  deliveryStatusNotificationEnabled: z.boolean().default(true),
  enhancedStatusCodesEnabled: z.boolean().default(true),
  smtpUtf8Enabled: z.boolean().default(true),
  chunkingEnabled: z.boolean().default(false).describe('BDAT/CHUNKING; not supported by the SMTP library yet, so it must stay false'),
  bareLinefeedRejectionEnabled: z.boolean().default(false),
  rejectReservedTopLevelRecipientDomains: z.boolean().default(false),
  rejectReservedSecondLevelRecipientDomains: z.boolean().default(false),
  rejectSingleLabelRecipientDomains: z.boolean().default(false),
  protocolLoggingLevel: z.enum(LOGGING_LEVELS).optional().describe('Verbose writes the protocol log; default None (Verbose on Default Frontend)'),
  addAuthenticatedUserToReceived: z.boolean().default(false).describe('name the authenticated user in the Received header'),
  tlsCertificateName: z.string().optional(),
});

export const sendConnectorSchema = z.strictObject({
  name: connectorName,
  enabled: z.boolean().default(true),
  comment: z.string().optional(),
  usage: z.enum(SEND_USAGES).default('Custom').describe('sets the default maxMessageSize: Custom/Internet/Partner 35MB, Internal unlimited'),
  addressSpaces: z.array(addressSpace).min(1),
  dnsRoutingEnabled: z.boolean().optional().describe('MX routing; default true unless smartHosts is set'),
  smartHosts: z.array(z.string().min(1)).optional().describe('IP, [IP] or FQDN, each with an optional :port'),
  port: z.number().int().min(0).max(65535).default(25),
  smartHostAuthMechanism: z.enum(SMART_HOST_AUTH).default('None'),
  authenticationCredential: z.strictObject({ username: z.string().min(1), passwordFile: z.string().min(1) }).optional(),
  requireTLS: z.boolean().default(false),
  tlsAuthLevel: z.enum(TLS_AUTH_LEVELS).optional(),
  tlsDomain: z.string().optional(),
  tlsCertificateName: z.string().optional(),
  ignoreStartTls: z.boolean().default(false),
  domainSecureEnabled: z.boolean().default(false),
  sourceTransportServers: z.array(z.string()).optional().describe('servers that send through this connector; default the local server'),
  isScopedConnector: z.boolean().default(false),
  maxMessageSize: size().optional(),
  connectionInactivityTimeout: duration().prefault('10m'),
  smtpMaxMessagesPerConnection: z.number().int().min(1).default(20),
  forceHELO: z.boolean().default(false),
  fqdn: z.string().optional(),
  sourceIPAddress: z.string().optional(),
  errorPolicies: z.enum(['Default', 'DowngradeDnsFailures', 'DowngradeCustomFailures', 'UpgradeCustomFailures']).default('Default'),
  protocolLoggingLevel: z.enum(LOGGING_LEVELS).default('None'),
});

export const foreignConnectorSchema = z.strictObject({
  name: connectorName,
  enabled: z.boolean().default(true),
  comment: z.string().optional(),
  addressSpaces: z.array(addressSpace).min(1),
  dropDirectory: z.string().min(1),
  dropDirectoryQuota: size().prefault('unlimited'),
  maxMessageSize: size().prefault('unlimited'),
  relayDsnRequired: z.boolean().default(false),
  sourceTransportServers: z.array(z.string()).optional(),
  isScopedConnector: z.boolean().default(false),
});

export const deliveryAgentConnectorSchema = z.strictObject({
  name: connectorName,
  enabled: z.boolean().default(true),
  comment: z.string().optional(),
  addressSpaces: z.array(addressSpace).min(1),
  deliveryProtocol: z.enum(['http', 'lmtp', 'maildir']),
  url: z.string().optional().describe('http: the URL to POST each message to'),
  host: z.string().optional().describe('lmtp: host'),
  port: z.number().int().min(1).max(65535).optional(),
  socket: z.string().optional().describe('lmtp: UNIX socket path'),
  maildirRoot: z.string().optional().describe('maildir: path template with {domain} and {local}'),
  maxConcurrentConnections: z.number().int().min(1).default(5),
  maxMessagesPerConnection: z.number().int().min(1).default(20),
  timeout: duration().prefault('1m'),
  maxMessageSize: size().prefault('unlimited'),
  sourceTransportServers: z.array(z.string()).optional(),
  isScopedConnector: z.boolean().default(false),
  protocolLoggingLevel: z.enum(LOGGING_LEVELS).default('Verbose'),
});

export const acceptedDomainSchema = z.strictObject({
  domainName: z.string().min(1),
  domainType: z.enum(DOMAIN_TYPES).default('Authoritative'),
  default: z.boolean().default(false),
  name: z.string().optional(),
});

export const transportServiceSchema = z
  .strictObject({
    pickupDirectoryPath: z.string().optional(),
    replayDirectoryPath: z.string().optional(),
    pickupDirectoryMaxMessagesPerMinute: z.number().int().min(1).default(100),
    pickupDirectoryMaxHeaderSize: size().prefault('64KB'),
    pickupDirectoryMaxRecipientsPerMessage: z.number().int().min(1).default(100),
    queueGlitchRetryCount: z.number().int().min(0).max(15).default(4),
    queueGlitchRetryInterval: duration().prefault('1m'),
    transientFailureRetryInterval: duration().prefault('5m'),
    transientFailureRetryCount: z.number().int().min(0).max(15).default(6),
    outboundConnectionFailureRetryInterval: duration().prefault('10m'),
    messageRetryInterval: duration().prefault('15m'),
    messageExpirationTimeout: duration().prefault('2d'),
    delayNotificationTimeout: duration().prefault('4h'),
    queueMaxIdleTime: duration().prefault('3m'),
    maxOutboundConnections: countOrUnlimited(1).prefault(1000),
    maxPerDomainOutboundConnections: countOrUnlimited(1).prefault(20),
    maxConcurrentMailboxDeliveries: z.number().int().min(1).max(256).default(20),
    poisonMessageDetectionEnabled: z.boolean().default(true),
    poisonThreshold: z.number().int().min(1).max(10).default(2),
    unreachableAction: z.enum(['queue', 'ndr']).default('queue'),
    externalDsnMaxMessageAttachSize: size().prefault('10MB'),
    tlsReceiveDomainSecureList: z.array(z.string()).default([]),
    receiveProtocolLogMaxAge: duration().prefault('30d'),
    receiveProtocolLogMaxDirectorySize: size().prefault('250MB'),
    receiveProtocolLogMaxFileSize: size().prefault('10MB'),
    sendProtocolLogMaxAge: duration().prefault('30d'),
    sendProtocolLogMaxDirectorySize: size().prefault('250MB'),
    sendProtocolLogMaxFileSize: size().prefault('10MB'),
    messageTrackingLogEnabled: z.boolean().default(true),
    messageTrackingLogMaxAge: duration().prefault('30d'),
    messageTrackingLogMaxDirectorySize: size().prefault('1000MB'),
    messageTrackingLogMaxFileSize: size().prefault('10MB'),
    shutdownTimeout: duration().prefault('30s').describe('how long SIGTERM waits for sessions and deliveries in flight'),
    fsyncEnabled: z.boolean().default(true).describe('fsync spool files before acknowledging; never turn off in production'),
  })
  .prefault({});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      name: z.string().min(1).max(15).default('MAILYARD').describe('NetBIOS-style server name used in default connector names and logs'),
      fqdn: z.string().min(1).default('localhost').describe('EHLO/HELO name and banner host'),
      site: z.string().default('Default-First-Site'),
      dataDir: z.string().default('/var/lib/mailyard'),
      logDir: z.string().default('/var/log/mailyard'),
      logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
      admin: z
        .strictObject({
          listen: z.string().default('127.0.0.1:8025'),
          allowNonLoopback: z.boolean().default(false).describe('must be true to bind the admin API to a non-loopback address'),
        })
        .prefault({}),
    })
    .prefault({}),
  dns: z
    .strictObject({
      servers: z.array(z.string()).optional().describe('"IP" or "IP:port"; default the system resolvers'),
      timeout: duration().prefault('5s'),
    })
    .prefault({}),
  tls: z
    .strictObject({
      certFile: z.string().optional(),
      keyFile: z.string().optional(),
      caFile: z.string().optional().describe('CA bundle for verifying client and server certificates'),
      certificates: z.array(z.strictObject({ name: z.string(), certFile: z.string(), keyFile: z.string() })).default([]),
      minVersion: z.enum(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    })
    .prefault({}),
  acceptedDomains: z.array(acceptedDomainSchema).default([]),
  users: z.strictObject({ file: z.string().optional() }).prefault({}),
  mailboxDelivery: z
    .strictObject({
      type: z.enum(['maildir', 'lmtp']).default('maildir'),
      maildirRoot: z.string().optional().describe('path template: {domain}, {local}; default DATADIR/mail/{domain}/{local}'),
      lmtp: z.strictObject({ host: z.string().optional(), port: z.number().int().optional(), socket: z.string().optional() }).optional(),
      recipientValidation: z.boolean().default(false),
      aliases: z.record(z.string(), z.union([z.string(), z.array(z.string())])).default({}),
    })
    .prefault({}),
  organization: z
    .strictObject({
      servers: z
        .array(z.strictObject({ name: z.string().min(1), fqdn: z.string().min(1), site: z.string().default('Default-First-Site'), address: z.string().optional() }))
        .default([]),
      siteLinks: z.array(z.strictObject({ sites: z.array(z.string()).length(2), cost: z.number().int().min(1) })).default([]),
    })
    .prefault({}),
  receiveConnectors: z.array(receiveConnectorSchema).optional(),
  sendConnectors: z.array(sendConnectorSchema).default([]),
  foreignConnectors: z.array(foreignConnectorSchema).default([]),
  deliveryAgentConnectors: z.array(deliveryAgentConnectorSchema).default([]),
  transportService: transportServiceSchema,
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

/**
 * docs/configuration.md, generated from the schema: every key with its type, default, Exchange
 * name and meaning (the schema's describe() texts), plus the tables that come from code (usage
 * presets, default Receive connectors, permission names). `scripts/gen-config-doc.ts` writes the
 * file; a unit test checks that the file is current and names every schema key. Pure.
 */
import type { z } from 'zod';
import { defaultReceiveConnectors, RECEIVE_USAGE_PRESETS, SEND_USAGE_MAX_MESSAGE_SIZE } from './defaults.js';
import { PERMISSION_AD_NAMES } from './permissions.js';
import { configSchema, RECEIVE_PERMISSIONS } from './schema.js';
import { kindOf, keyPaths, schemaAt, unwrap, type AnySchema } from './schema-walk.js';
import { formatSize } from '../model/index.js';

const ROOT = configSchema as unknown as AnySchema;

/** "receiveConnectors[].bindings" for ["receiveConnectors", "[]", "bindings"]. */
export function docKeyPath(path: readonly string[]): string {
  return path.reduce((acc, seg) => (seg === '[]' ? `${acc}[]` : acc ? `${acc}.${seg}` : seg), '');
}

/** Every key path of the schema, as written in the doc. */
export function allDocKeyPaths(): string[] {
  return keyPaths(ROOT).map(docKeyPath);
}

const CMDLET: Record<string, string> = {
  receiveConnectors: 'Set-ReceiveConnector',
  sendConnectors: 'Set-SendConnector',
  foreignConnectors: 'Set-ForeignConnector',
  deliveryAgentConnectors: 'Set-DeliveryAgentConnector',
  acceptedDomains: 'Set-AcceptedDomain',
  transportService: 'Set-TransportService',
};

/** Exchange names that are not simply the key with a capital first letter. */
const EXCHANGE_NAME: Record<string, string> = {
  'server.name': 'server name (Get-ExchangeServer Name)',
  'server.fqdn': 'server Fqdn',
  'server.site': 'Active Directory site',
  'server.logDir': 'ReceiveProtocolLogPath, SendProtocolLogPath, MessageTrackingLogPath (their parent)',
  'dns.servers': 'Set-TransportService -ExternalDNSServers',
  'organization.servers': 'the organization\'s Exchange servers',
  'organization.siteLinks': 'Set-AdSiteLink -ExchangeCost',
  'receiveConnectors[].usage': 'New-ReceiveConnector -Usage',
  'sendConnectors[].usage': 'New-SendConnector -Usage',
  'sendConnectors[].dnsRoutingEnabled': 'Set-SendConnector -DNSRoutingEnabled',
  'sendConnectors[].ignoreStartTls': 'Set-SendConnector -IgnoreSTARTTLS',
  'sendConnectors[].connectionInactivityTimeout': 'Set-SendConnector -ConnectionInactivityTimeOut',
  'sendConnectors[].forceHELO': 'Set-SendConnector -ForceHELO',
  'acceptedDomains[].default': 'Set-AcceptedDomain -MakeDefault',
  'transportService.queueGlitchRetryCount': 'QueueGlitchRetryCount (EdgeTransport.exe.config)',
  'transportService.queueGlitchRetryInterval': 'QueueGlitchRetryInterval (EdgeTransport.exe.config)',
  'transportService.externalDsnMaxMessageAttachSize': 'Set-TransportConfig -ExternalDsnMaxMessageAttachSize',
  'transportService.tlsReceiveDomainSecureList': 'Set-TransportConfig -TLSReceiveDomainSecureList',
  'transportService.poisonMessageDetectionEnabled': 'Set-TransportService -PoisonMessageDetectionEnabled',
  'transportService.backPressure': 'back pressure (resource monitoring, EdgeTransport.exe.config)',
  'transportService.backPressure.enabled': 'EnableResourceMonitoring (EdgeTransport.exe.config)',
  'transportService.backPressure.minimumFreeDiskSpace': 'the queue database disk-space thresholds (a percentage of the disk in Exchange)',
  'transportService.backPressure.maxQueuedMessages': 'the submission queue length thresholds',
  'transportService.backPressure.checkInterval': 'ResourceMonitoringInterval (EdgeTransport.exe.config)',
};

/** Keys Mailyard adds (no Exchange counterpart) inside sections that otherwise follow a cmdlet. */
const MAILYARD_ONLY = new Set([
  'receiveConnectors[].tlsMode',
  'receiveConnectors[].greetingDelay',
  'receiveConnectors[].addAuthenticatedUserToReceived',
  'sendConnectors[].addressSpaces[].type',
  'sendConnectors[].addressSpaces[].address',
  'sendConnectors[].addressSpaces[].cost',
  'foreignConnectors[].addressSpaces[].type',
  'foreignConnectors[].addressSpaces[].address',
  'foreignConnectors[].addressSpaces[].cost',
  'deliveryAgentConnectors[].addressSpaces[].type',
  'deliveryAgentConnectors[].addressSpaces[].address',
  'deliveryAgentConnectors[].addressSpaces[].cost',
  'deliveryAgentConnectors[].url',
  'deliveryAgentConnectors[].host',
  'deliveryAgentConnectors[].port',
  'deliveryAgentConnectors[].socket',
  'deliveryAgentConnectors[].maildirRoot',
  'deliveryAgentConnectors[].timeout',
  'deliveryAgentConnectors[].protocolLoggingLevel',
  'transportService.unreachableAction',
  'transportService.shutdownTimeout',
  'transportService.fsyncEnabled',
]);

/** Defaults that depend on other keys (applied in defaults.ts), shown instead of "none". */
const COMPUTED_DEFAULT: Record<string, string> = {
  'dns.servers': 'the system resolvers',
  'mailboxDelivery.maildirRoot': '`DATADIR/mail/{domain}/{local}`',
  'mailboxDelivery.lmtp.port': '24',
  receiveConnectors: 'the five Exchange default connectors',
  'receiveConnectors[].transportRole': 'FrontendTransport (HubTransport for usage Internal)',
  'receiveConnectors[].bindings': 'by usage: Client `0.0.0.0:587`, Internal `0.0.0.0:25`; others required',
  'receiveConnectors[].remoteIPRanges': 'all IPv4 and IPv6 addresses',
  'receiveConnectors[].authMechanism': 'by usage; without usage `[Tls]`',
  'receiveConnectors[].permissionGroups': 'by usage; without usage `[None]`',
  'receiveConnectors[].fqdn': 'server.fqdn',
  'receiveConnectors[].maxRecipientsPerMessage': '200',
  'receiveConnectors[].maxInboundConnectionPerSource': '20',
  'receiveConnectors[].maxInboundConnectionPercentagePerSource': '2',
  'receiveConnectors[].messageRateLimit': 'unlimited (5 for usage Client)',
  'receiveConnectors[].messageRateSource': 'IPAddress (User for usage Client)',
  'receiveConnectors[].protocolLoggingLevel': 'None',
  'receiveConnectors[].banner': '`220 FQDN ...` from the SMTP library',
  'sendConnectors[].dnsRoutingEnabled': 'true unless smartHosts is set',
  'sendConnectors[].maxMessageSize': `by usage: ${formatSize(SEND_USAGE_MAX_MESSAGE_SIZE.Custom)}; Internal unlimited`,
  'sendConnectors[].sourceTransportServers': '[server.name]',
  'sendConnectors[].fqdn': 'server.fqdn',
  'foreignConnectors[].sourceTransportServers': '[server.name]',
  'deliveryAgentConnectors[].sourceTransportServers': '[server.name]',
  'deliveryAgentConnectors[].port': '24 (lmtp)',
  'acceptedDomains[].name': 'the domain name',
};

function exchangeName(path: string[], doc: string): string {
  if (EXCHANGE_NAME[doc]) return EXCHANGE_NAME[doc]!;
  const top = path[0]!;
  const key = path[path.length - 1]!;
  const cmdlet = CMDLET[top];
  if (!cmdlet || MAILYARD_ONLY.has(doc) || key === '[]' || path.filter((p) => p !== '[]').length > 2) return '—';
  return `${cmdlet} -${key[0]!.toUpperCase()}${key.slice(1)}`;
}

function typeOf(schema: AnySchema): string {
  const kind = kindOf(schema);
  if (kind === 'size') return 'size';
  if (kind === 'duration') return 'duration';
  if (kind === 'count') return 'integer or `unlimited`';
  if (kind === 'object') return 'mapping';
  if (kind === 'record') return 'mapping';
  const inner = unwrap(schema).inner;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const d = (inner as any)._zod.def;
  switch (d.type) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'number': {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const n = inner as any;
      const bounded = (v: unknown): v is number => typeof v === 'number' && Math.abs(v) < Number.MAX_SAFE_INTEGER;
      const range = bounded(n.minValue) && bounded(n.maxValue) ? ` ${n.minValue}–${n.maxValue}` : bounded(n.minValue) ? ` ≥ ${n.minValue}` : '';
      return `${n.isInt ? 'integer' : 'number'}${range}`;
    }
    case 'enum':
      return (Object.values(d.entries) as string[]).map((v) => `\`${v}\``).join(', ');
    case 'array':
      return `list of ${typeOf(d.element)}`;
    case 'union':
      return kind === 'union' ? 'string or mapping' : 'string';
    default:
      return String(d.type);
  }
}

function defaultOf(schema: AnySchema, doc: string): string {
  if (COMPUTED_DEFAULT[doc]) return COMPUTED_DEFAULT[doc]!;
  const u = unwrap(schema);
  if (u.hasDefault) {
    const v = u.defaultValue;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) return kindOf(schema) === 'record' ? '`{}`' : '—';
    if (Array.isArray(v)) return v.length === 0 ? '`[]`' : `\`${JSON.stringify(v)}\``;
    return `\`${String(v)}\``;
  }
  return u.optional ? 'none' : '**required**';
}

const esc = (s: string) => s.replace(/\|/g, '\\|');

function table(prefix: string): string[] {
  const rows: string[] = ['| Key | Type | Default | Exchange | Meaning |', '|---|---|---|---|---|'];
  for (const path of keyPaths(ROOT)) {
    if (path[0] !== prefix || path.length === 1) continue;
    const doc = docKeyPath(path);
    const schema = schemaAt(ROOT, path.map((p) => (p === '[]' ? 0 : p)))!;
    const u = unwrap(schema);
    rows.push(`| \`${doc}\` | ${esc(typeOf(schema))} | ${esc(defaultOf(schema, doc))} | ${esc(exchangeName(path, doc))} | ${esc(u.description ?? '')} |`);
  }
  return rows;
}

const INTRO = `# Configuration reference

<!-- Generated by scripts/gen-config-doc.ts from src/config/schema.ts: edit the schema's describe()
     texts (or src/config/doc.ts), then run \`npx tsx scripts/gen-config-doc.ts\`. -->

Mailyard reads one YAML file: \`--config FILE\`, else \`$MAILYARD_CONFIG\`, else
\`/etc/mailyard/mailyard.yaml\` if it exists, else \`./config/mailyard.yaml\`. Key names are
Exchange's parameter names in camelCase, so the **Exchange** column names the cmdlet parameter each
key mirrors ("—" marks keys Mailyard adds).

- \`mailyard config check\` validates the file and prints every problem as \`FILE:LINE:COL: message\`
  (exit 1), warnings as \`FILE:LINE:COL: warning: message\` (exit 0). Unknown keys are errors, with a
  suggestion when the key looks like a typo. Referenced files (certificates, users, passwords) are
  checked when the daemon starts, not by \`config check\`.
- \`mailyard config show\` prints the effective configuration with every default filled in, in the
  order of this reference; its output is itself a valid configuration.

**Sizes**: a number of bytes, or a number with \`B\`, \`KB\`, \`MB\`, \`GB\`, \`TB\` (binary multiples,
as in Exchange: 1 KB = 1024 bytes), or \`unlimited\`. Exchange's own display form
\`36 MB (37,748,736 bytes)\` is accepted too.

**Durations**: \`500ms\`, \`30s\`, \`5m\`, \`4h\`, \`2d\`, \`1w\`, combinations such as \`1h30m\`, Exchange's
time span \`[d.]hh:mm:ss\` (\`00:05:00\`, \`1.02:03:04\`), a bare number of seconds, or \`unlimited\`.

**Counts** marked "integer or \`unlimited\`" take the word \`unlimited\` as well as a number.
`;

const RULES = `## Rules checked across keys

Besides types and ranges, \`config check\` enforces Exchange's rules and Mailyard's own:

- Connector names are unique: Receive connectors among themselves; Send, Foreign and Delivery Agent
  connectors share one name space (compared without regard to case).
- \`bindings\` are \`IP:port\` or \`[IPv6]:port\`; \`remoteIPRanges\` entries are an address, a CIDR block
  or \`first-last\`. A connector whose usage gives no binding (Internet, Partner, Custom, none) must
  list its bindings.
- Two Receive connectors may not have the same binding and the same remote IP ranges; on a shared
  binding, remote ranges must nest or be disjoint (a partial overlap is an error), and the same range
  may not appear on both.
- A FrontendTransport and a HubTransport connector cannot use the same port.
- \`authMechanism\`: \`None\` only alone; \`BasicAuthRequireTLS\` needs \`BasicAuth\` and \`Tls\`;
  \`ExternalAuthoritative\` only with \`Tls\` and needs \`permissionGroups: [ExchangeServers]\`;
  \`requireTLS\`, \`tlsMode: implicit\` and \`domainSecureEnabled\` need \`Tls\`. \`permissionGroups: [None]\`
  only alone.
- \`Tls\` without any certificate (\`tls.certFile\`) is allowed: STARTTLS is then not offered, and
  \`config check\` warns. \`requireTLS\` or \`tlsMode: implicit\` without a certificate is an error.
- \`connectionInactivityTimeout\` must be shorter than \`connectionTimeout\`; \`banner\` must start with
  \`220\`; \`chunkingEnabled: true\` is refused (the SMTP library has no BDAT).
- \`permissions\` entries must name a supported permission (any of the spellings listed under \`receiveConnectors\`).
- A connector that grants nothing (\`permissionGroups\` None or Custom and no \`permissions\`) gets a
  warning: it accepts no mail.
- Address spaces must parse (\`*\` only alone or as a leading \`*.\`); a Send connector that uses DNS
  routing carries SMTP address spaces only (other types need smart hosts, or a Foreign or Delivery
  Agent connector, which may carry any type).
- Send connectors: \`dnsRoutingEnabled: true\` with \`smartHosts\` and \`dnsRoutingEnabled: false\`
  without them are errors; \`BasicAuth\`/\`BasicAuthRequireTLS\` smart host authentication needs
  \`authenticationCredential\`; \`tlsAuthLevel\` needs \`requireTLS\`; \`ignoreStartTls\` cannot be
  combined with \`requireTLS\`; \`DomainValidation\` towards smart hosts needs \`tlsDomain\`;
  \`sourceTransportServers\` must name \`server.name\` or a server of \`organization.servers\`.
- Delivery Agent connectors need \`url\` (http), \`host\` or \`socket\` (lmtp), or \`maildirRoot\` (maildir).
- Accepted domains are \`domain\` or \`*.domain\`, each once; at most one is the default.
- \`server.admin.listen\` must be a loopback address unless \`allowNonLoopback: true\`;
  \`dns.servers\` entries are \`IP\` or \`IP:port\`; \`mailboxDelivery.type: lmtp\` needs
  \`lmtp.host\` or \`lmtp.socket\`; \`tls.certFile\` and \`tls.keyFile\` go together.
- \`transportService.maxPerDomainOutboundConnections\` cannot exceed \`maxOutboundConnections\`;
  a \`delayNotificationTimeout\` not shorter than \`messageExpirationTimeout\` gets a warning.
`;

function defaultConnectorsTable(): string[] {
  const rows = ['| Name | Role | Bindings | authMechanism | permissionGroups | Differences |', '|---|---|---|---|---|---|'];
  for (const c of defaultReceiveConnectors('<Server>', false)) {
    const extra = Object.entries(c)
      .filter(([k]) => !['name', 'transportRole', 'bindings', 'authMechanism', 'permissionGroups'].includes(k))
      .map(([k, v]) => `${k}: ${String(v)}`)
      .join(', ');
    rows.push(
      `| \`${String(c.name)}\` | ${c.transportRole} | ${(c.bindings ?? []).join(', ')} | ${(c.authMechanism ?? []).join(', ')} | ${(c.permissionGroups ?? []).join(', ')} | ${esc(extra || '—')} |`,
    );
  }
  return rows;
}

function usageTable(): string[] {
  const rows = ['| usage | authMechanism | permissionGroups | bindings |', '|---|---|---|---|'];
  for (const [u, p] of Object.entries(RECEIVE_USAGE_PRESETS)) {
    rows.push(`| ${u} | ${p.authMechanism.join(', ')} | ${p.permissionGroups.join(', ')} | ${p.bindings ? p.bindings.join(', ') : 'required'} |`);
  }
  return rows;
}

function permissionTable(): string[] {
  const rows = ['| permissions (log spelling) | also accepted |', '|---|---|'];
  for (const p of RECEIVE_PERMISSIONS) {
    const short = p.startsWith('SMTP') ? `\`${p.slice(4)}\`, ` : '';
    rows.push(`| \`${p}\` | ${short}\`${PERMISSION_AD_NAMES[p]}\` |`);
  }
  return rows;
}

const SECTION_NOTES: Record<string, string[]> = {
  receiveConnectors: [
    'Without a `receiveConnectors` key Mailyard creates the five Receive connectors of an Exchange',
    'Mailbox server for `server.name`. Mailyard is one process, so the Hub connectors and the outbound',
    'proxy listen on loopback unless `organization.servers` names other servers:',
    '',
    ...defaultConnectorsTable(),
    '',
    '`usage` fills `authMechanism`, `permissionGroups` and `bindings` when they are left out:',
    '',
    ...usageTable(),
    '',
    'Receive permissions may be written in Exchange\'s protocol-log spelling, without the `SMTP`',
    'prefix, or as the Active Directory right; `config show` prints the log spelling:',
    '',
    ...permissionTable(),
    '',
  ],
};

/** The whole of docs/configuration.md. */
export function renderConfigDoc(): string {
  const out: string[] = [INTRO];
  const shape = (configSchema as unknown as { shape: Record<string, z.ZodType> }).shape;
  for (const [key, schema] of Object.entries(shape)) {
    const u = unwrap(schema);
    out.push(`## \`${key}\``, '');
    const text = u.description ?? '';
    out.push(`${text.charAt(0).toUpperCase()}${text.slice(1)}. Type: ${esc(typeOf(schema))}; default: ${defaultOf(schema, key)}.`, '');
    if (SECTION_NOTES[key]) out.push(...SECTION_NOTES[key]!);
    const rows = table(key);
    if (rows.length > 2) out.push(...rows, '');
  }
  out.push(RULES);
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}

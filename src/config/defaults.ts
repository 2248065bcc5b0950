/**
 * From the parsed file to the effective configuration: Exchange's presets and defaults that depend
 * on other keys. Pure: no files are read here. Runs only on a config that passed validate.ts.
 *
 * - No `receiveConnectors` key: the five default Receive connectors of an Exchange Mailbox server
 *   for server.name (reference 2.1). Mailyard is one process, so the Hub ones (2525, 465) and the
 *   outbound proxy (717) listen on loopback unless organization.servers names peers.
 * - `usage` presets fill authMechanism, permissionGroups and bindings that were left out (2.4).
 * - Send connectors: maxMessageSize by usage (Internal unlimited, others 35MB), DNS routing unless
 *   smart hosts are given, the local server as source server.
 */
import { ALL_IPV4, ALL_IPV6, UNLIMITED, parseAddressSpace, type AddressSpace } from '../model/index.js';
import type {
  AuthMechanism,
  DeliveryAgentConnector,
  ForeignConnector,
  ParsedConfig,
  ParsedReceiveConnector,
  ParsedSendConnector,
  PermissionGroup,
  AddressSpaceInput,
} from './schema.js';
import { receiveConnectorSchema } from './schema.js';
import type { z } from 'zod';
import { normalizePermission } from './permissions.js';

type Require<T, K extends keyof T> = Omit<T, K> & { [P in K]-?: Exclude<T[P], undefined> };

export type ReceiveConnector = Require<
  ParsedReceiveConnector,
  | 'transportRole'
  | 'bindings'
  | 'remoteIPRanges'
  | 'authMechanism'
  | 'permissionGroups'
  | 'fqdn'
  | 'maxRecipientsPerMessage'
  | 'maxInboundConnectionPerSource'
  | 'maxInboundConnectionPercentagePerSource'
  | 'messageRateLimit'
  | 'messageRateSource'
  | 'protocolLoggingLevel'
>;

export type SendConnector = Omit<Require<ParsedSendConnector, 'dnsRoutingEnabled' | 'maxMessageSize' | 'sourceTransportServers' | 'fqdn'>, 'addressSpaces'> & {
  readonly addressSpaces: readonly AddressSpace[];
};
export type EffectiveForeignConnector = Omit<ForeignConnector, 'addressSpaces' | 'sourceTransportServers'> & {
  readonly addressSpaces: readonly AddressSpace[];
  readonly sourceTransportServers: readonly string[];
};
export type EffectiveDeliveryAgentConnector = Omit<DeliveryAgentConnector, 'addressSpaces' | 'sourceTransportServers'> & {
  readonly addressSpaces: readonly AddressSpace[];
  readonly sourceTransportServers: readonly string[];
};

export type Config = Omit<ParsedConfig, 'receiveConnectors' | 'sendConnectors' | 'foreignConnectors' | 'deliveryAgentConnectors' | 'mailboxDelivery'> & {
  readonly receiveConnectors: readonly ReceiveConnector[];
  readonly sendConnectors: readonly SendConnector[];
  readonly foreignConnectors: readonly EffectiveForeignConnector[];
  readonly deliveryAgentConnectors: readonly EffectiveDeliveryAgentConnector[];
  readonly mailboxDelivery: Require<ParsedConfig['mailboxDelivery'], 'maildirRoot'>;
  /** The file this config came from (for messages), or "<inline>". */
  readonly source: string;
};

const ALL_RANGES = [ALL_IPV4, ALL_IPV6];

interface Preset {
  readonly authMechanism: AuthMechanism[];
  readonly permissionGroups: PermissionGroup[];
  readonly bindings?: string[];
}

/** Reference 2.4: what each usage fills in. */
export const RECEIVE_USAGE_PRESETS: Record<NonNullable<ParsedReceiveConnector['usage']>, Preset> = {
  Client: { authMechanism: ['Tls', 'BasicAuth', 'BasicAuthRequireTLS', 'Integrated'], permissionGroups: ['ExchangeUsers'], bindings: ['0.0.0.0:587'] },
  Custom: { authMechanism: ['Tls'], permissionGroups: ['None'] },
  Internal: { authMechanism: ['Tls', 'ExchangeServer'], permissionGroups: ['ExchangeLegacyServers', 'ExchangeServers'], bindings: ['0.0.0.0:25'] },
  Internet: { authMechanism: ['Tls'], permissionGroups: ['AnonymousUsers'] },
  Partner: { authMechanism: ['Tls'], permissionGroups: ['Partners'] },
};

/** A Receive connector as written in the file (before the schema fills defaults). */
export type ReceiveConnectorInput = z.input<typeof receiveConnectorSchema>;

/** The five default Receive connectors of an Exchange Mailbox server (reference 2.1), as file input: run them through receiveConnectorSchema. */
export function defaultReceiveConnectors(serverName: string, hasPeers: boolean): ReceiveConnectorInput[] {
  const all = (port: number) => [`0.0.0.0:${port}`, `[::]:${port}`];
  const internal = (port: number) => (hasPeers ? all(port) : [`127.0.0.1:${port}`, `[::1]:${port}`]);
  return [
    {
      name: `Default Frontend ${serverName}`,
      transportRole: 'FrontendTransport',
      bindings: all(25),
      authMechanism: ['Tls', 'BasicAuth', 'BasicAuthRequireTLS', 'ExchangeServer', 'Integrated'],
      permissionGroups: ['AnonymousUsers', 'ExchangeLegacyServers', 'ExchangeServers'],
      protocolLoggingLevel: 'Verbose',
      maxRecipientsPerMessage: 200,
    },
    {
      name: `Client Frontend ${serverName}`,
      transportRole: 'FrontendTransport',
      bindings: all(587),
      authMechanism: ['Tls', 'BasicAuth', 'BasicAuthRequireTLS', 'Integrated'],
      permissionGroups: ['ExchangeUsers'],
      messageRateLimit: 5,
      messageRateSource: 'User',
    },
    {
      name: `Outbound Proxy Frontend ${serverName}`,
      transportRole: 'FrontendTransport',
      bindings: internal(717),
      authMechanism: ['Tls', 'BasicAuth', 'BasicAuthRequireTLS', 'ExchangeServer', 'Integrated'],
      permissionGroups: ['ExchangeServers'],
    },
    {
      name: `Default ${serverName}`,
      transportRole: 'HubTransport',
      bindings: internal(2525),
      authMechanism: ['Tls', 'BasicAuth', 'ExchangeServer', 'Integrated'],
      permissionGroups: ['ExchangeLegacyServers', 'ExchangeServers', 'ExchangeUsers'],
      maxRecipientsPerMessage: 5000,
      maxInboundConnectionPerSource: 'unlimited',
      maxInboundConnectionPercentagePerSource: 100,
    },
    {
      name: `Client Proxy ${serverName}`,
      transportRole: 'HubTransport',
      bindings: internal(465),
      authMechanism: ['Tls', 'BasicAuth', 'BasicAuthRequireTLS', 'ExchangeServer', 'Integrated'],
      permissionGroups: ['ExchangeServers', 'ExchangeUsers'],
      messageRateLimit: 5,
      messageRateSource: 'User',
    },
  ];
}

export function resolveReceiveConnector(c: ParsedReceiveConnector, server: ParsedConfig['server']): ReceiveConnector {
  const preset = c.usage ? RECEIVE_USAGE_PRESETS[c.usage] : undefined;
  const isClient = c.usage === 'Client';
  return {
    ...c,
    transportRole: c.transportRole ?? (c.usage === 'Internal' ? 'HubTransport' : 'FrontendTransport'),
    bindings: c.bindings ?? preset?.bindings ?? [],
    // Exchange's Internet usage sets all addresses at creation; ranges written in the file still win.
    remoteIPRanges: c.remoteIPRanges ?? ALL_RANGES,
    authMechanism: c.authMechanism ?? preset?.authMechanism ?? ['Tls'],
    permissionGroups: c.permissionGroups ?? preset?.permissionGroups ?? ['None'],
    permissions: c.permissions.map((p) => normalizePermission(p) ?? p),
    fqdn: c.fqdn ?? server.fqdn,
    maxRecipientsPerMessage: c.maxRecipientsPerMessage ?? 200,
    maxInboundConnectionPerSource: c.maxInboundConnectionPerSource ?? 20,
    maxInboundConnectionPercentagePerSource: c.maxInboundConnectionPercentagePerSource ?? 2,
    messageRateLimit: c.messageRateLimit ?? (isClient ? 5 : UNLIMITED),
    messageRateSource: c.messageRateSource ?? (isClient ? 'User' : 'IPAddress'),
    protocolLoggingLevel: c.protocolLoggingLevel ?? 'None',
  };
}

export const SEND_USAGE_MAX_MESSAGE_SIZE: Record<ParsedSendConnector['usage'], number> = {
  Custom: 35 * 1024 * 1024,
  Internet: 35 * 1024 * 1024,
  Partner: 35 * 1024 * 1024,
  Internal: UNLIMITED,
};

function spaces(list: readonly AddressSpaceInput[]): AddressSpace[] {
  return list.map((s) => {
    const parsed = parseAddressSpace(s);
    if ('error' in parsed) throw new Error(parsed.error); // validate.ts reports these with positions first
    return parsed;
  });
}

/** Applies every default; `parsed` must have passed validateSemantics. */
export function applyDefaults(parsed: ParsedConfig, source: string, defaultReceive?: ParsedReceiveConnector[]): Config {
  const server = parsed.server;
  const receive = parsed.receiveConnectors ?? defaultReceive ?? [];
  return {
    ...parsed,
    source,
    receiveConnectors: receive.map((c) => resolveReceiveConnector(c, server)),
    sendConnectors: parsed.sendConnectors.map((c) => ({
      ...c,
      addressSpaces: spaces(c.addressSpaces),
      dnsRoutingEnabled: c.dnsRoutingEnabled ?? !(c.smartHosts && c.smartHosts.length > 0),
      maxMessageSize: c.maxMessageSize ?? SEND_USAGE_MAX_MESSAGE_SIZE[c.usage],
      sourceTransportServers: c.sourceTransportServers ?? [server.name],
      fqdn: c.fqdn ?? server.fqdn,
    })),
    foreignConnectors: parsed.foreignConnectors.map((c) => ({
      ...c,
      addressSpaces: spaces(c.addressSpaces),
      sourceTransportServers: c.sourceTransportServers ?? [server.name],
    })),
    deliveryAgentConnectors: parsed.deliveryAgentConnectors.map((c) => ({
      ...c,
      addressSpaces: spaces(c.addressSpaces),
      sourceTransportServers: c.sourceTransportServers ?? [server.name],
    })),
    mailboxDelivery: {
      ...parsed.mailboxDelivery,
      maildirRoot: parsed.mailboxDelivery.maildirRoot ?? `${server.dataDir.replace(/\/$/, '')}/mail/{domain}/{local}`,
    },
  };
}

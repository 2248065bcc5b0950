/** What the categorizer decides for one recipient (Postfix's resolve triple, with Exchange's names). */

export type DeliveryType =
  | 'DnsConnectorDelivery'
  | 'SmartHostConnectorDelivery'
  | 'SmtpDeliveryToMailbox'
  | 'NonSmtpGatewayDelivery'
  | 'DeliveryAgent'
  | 'Unreachable';

/** Exchange's NextHopSolutionKey: one delivery queue per distinct key. */
export interface NextHopKey {
  readonly deliveryType: DeliveryType;
  /** Recipient domain (DNS), the smart host list, "mailbox", or the address space of a non-SMTP connector. */
  readonly nextHopDomain: string;
  /** Connector name; null for mailbox delivery and Unreachable. */
  readonly connector: string | null;
}

export function nextHopKeyString(k: NextHopKey): string {
  return `${k.deliveryType}:${k.nextHopDomain}:${k.connector ?? ''}`;
}

export type ConnectorKind = 'send' | 'foreign' | 'deliveryAgent' | 'mailbox';

export interface Candidate {
  readonly connector: string;
  readonly connectorType: ConnectorKind;
  readonly addressSpace: string;
  readonly cost: number;
  readonly kept: boolean;
  readonly reason: string;
}

export type RoutingDecision =
  | {
      readonly kind: 'routed';
      readonly key: NextHopKey;
      readonly connectorType: ConnectorKind;
      readonly addressSpace: string;
      readonly cost: number;
      readonly candidates: readonly Candidate[];
    }
  | {
      readonly kind: 'unroutable';
      /** 'queue': park in Unreachable until expiry; 'ndr': bounce at once (non-SMTP types, size). */
      readonly action: 'queue' | 'ndr';
      readonly enhanced: string; // "5.4.4" or "5.3.4"
      readonly reason: string;
      readonly candidates: readonly Candidate[];
    };

/** The SMTP envelope as it travels from a Receive connector through the queue to delivery. */

export type DsnNotify = 'SUCCESS' | 'FAILURE' | 'DELAY';

export interface Recipient {
  readonly address: string;
  /** RFC 3461 ORCPT, as "rfc822;user@example.com". */
  readonly orcpt?: string;
  /** RFC 3461 NOTIFY; an empty array means NOTIFY=NEVER; undefined means the default (FAILURE, DELAY). */
  readonly notify?: readonly DsnNotify[];
}

export interface Envelope {
  /** null is the null sender <>. */
  readonly mailFrom: string | null;
  readonly recipients: readonly Recipient[];
  readonly body: '7BIT' | '8BITMIME' | 'BINARYMIME';
  readonly smtputf8: boolean;
  readonly ret?: 'FULL' | 'HDRS';
  readonly envid?: string;
  /** SIZE= declared at MAIL FROM, if any. */
  readonly declaredSize?: number;
}

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface TlsInfo {
  readonly protocol: string; // "TLSv1.3"
  readonly cipher: string; // "TLS_AES_256_GCM_SHA384"
  readonly authorized?: boolean;
  readonly peerCertificateSubject?: string;
}

/** Where a message came from: filled by the Receive connector, Pickup, Replay or the DSN generator. */
export interface MessageSource {
  readonly kind: 'smtp' | 'pickup' | 'replay' | 'dsn';
  readonly connector?: string;
  readonly client?: Endpoint;
  readonly server?: Endpoint;
  readonly clientHostname?: string;
  readonly helo?: string;
  readonly tls?: TlsInfo;
  readonly authUser?: string;
}

/** Protocol log events (Exchange's SMTP Receive/Send protocol logs), written through a sink. */

export type ProtocolEventKind = '+' | '-' | '>' | '<' | '*';

export interface ProtocolEvent {
  readonly timestamp: Date;
  readonly connectorId: string; // receive: "SERVER\Connector name"; send: connector name
  readonly sessionId: string;
  readonly sequence: number;
  readonly localEndpoint: string; // "127.0.0.1:25"
  readonly remoteEndpoint: string;
  readonly event: ProtocolEventKind;
  readonly data: string;
  readonly context?: string;
}

/** Which file set a protocol event belongs to (CONTRACT.md "Files on disk"). */
export type ProtocolLogService = 'FrontEndReceive' | 'HubReceive' | 'HubSend' | 'Delivery';

export interface ProtocolLogSink {
  write(service: ProtocolLogService, event: ProtocolEvent): void;
}

export const nullProtocolLogSink: ProtocolLogSink = { write() {} };

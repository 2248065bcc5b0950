/** Message tracking events (Exchange's message tracking log), emitted through one typed sink. */
import type { MessageId } from './ids.js';

export type TrackingEventId =
  | 'RECEIVE' | 'SUBMIT' | 'RESOLVE' | 'EXPAND' | 'REDIRECT' | 'SEND' | 'DELIVER' | 'DEFER' | 'FAIL'
  | 'DSN' | 'DROP' | 'POISONMESSAGE' | 'BADMAIL' | 'RESUBMIT' | 'TRANSFER' | 'AGENTINFO';

export interface TrackingEvent {
  readonly timestamp: Date;
  readonly eventId: TrackingEventId;
  readonly source: 'SMTP' | 'STOREDRIVER' | 'ROUTING' | 'QUEUE' | 'DSN' | 'PICKUP' | 'AGENT';
  readonly messageId: MessageId | string; // internal id
  readonly internetMessageId?: string;
  readonly sender: string; // "" for the null sender
  readonly recipients: readonly string[];
  readonly recipientStatus?: readonly string[]; // per recipient, e.g. "250 2.0.0 OK"
  readonly totalBytes?: number;
  readonly subject?: string;
  readonly connectorId?: string;
  readonly clientIp?: string;
  readonly clientHostname?: string;
  readonly serverIp?: string;
  readonly serverHostname?: string;
  readonly relatedRecipientAddress?: string;
  readonly reference?: string;
  readonly sourceContext?: string;
}

export interface TrackingSink {
  emit(event: TrackingEvent): void;
}

export const nullTrackingSink: TrackingSink = { emit() {} };

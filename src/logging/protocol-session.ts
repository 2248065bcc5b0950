/**
 * One protocol-log conversation: a session id, a sequence counter and the two endpoints, so a
 * delivery agent writes `+ > < * -` lines with one call each. The endpoints are read at every line
 * because they are known only once the socket is connected.
 */
import { newSessionId } from '../model/ids.js';
import type { ProtocolEventKind, ProtocolLogService, ProtocolLogSink } from '../model/protocol.js';

export type ProtocolLineFn = (event: ProtocolEventKind, data: string, context?: string) => void;

export function protocolSession(opts: {
  readonly sink: ProtocolLogSink;
  readonly service: ProtocolLogService;
  readonly connectorId: string;
  readonly enabled: boolean;
  readonly endpoints: () => { readonly local: string; readonly remote: string };
}): ProtocolLineFn {
  if (!opts.enabled) return () => {};
  const sessionId = newSessionId();
  let sequence = 0;
  return (event, data, context) => {
    const { local, remote } = opts.endpoints();
    opts.sink.write(opts.service, {
      timestamp: new Date(),
      connectorId: opts.connectorId,
      sessionId,
      sequence: sequence++,
      localEndpoint: local,
      remoteEndpoint: remote,
      event,
      data,
      ...(context ? { context } : {}),
    });
  };
}

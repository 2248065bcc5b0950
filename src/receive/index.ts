/** Receive connectors: the SMTP listeners (see service.ts) and what they are built from. */
export { ReceiveService, type ReceiveServiceDeps, type BoundEndpoint } from './service.js';
export { ConnectorRuntime, connectorCertificates, receiveLogService, type ReceiveTls, type VerifyLogin, type RecipientLookup } from './connector.js';
export { receivedHeader, rfc5322Date, withProtocol } from './received.js';
export { receiveData, type DataOutcome } from './data.js';

/** Pure receive-side policy: connector selection, permissions, accepted domains, verdicts, replies. */
export * from './bindings.js';
export * from './connector-select.js';
export * from './permissions.js';
export * from './accepted-domains.js';
export * from './checks.js';
export * from './headers.js';
export * from './rate.js';
export * from './replies.js';
export * from './peer-identity.js';

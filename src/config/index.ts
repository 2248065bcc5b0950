/**
 * The configuration's public surface: load and check mailyard.yaml, the effective `Config` type
 * and its connector types, `config show` rendering and the permission-name normaliser.
 * Other folders import from here only.
 */
export * from './schema.js';
export * from './defaults.js';
export * from './errors.js';
export * from './permissions.js';
export * from './validate.js';
export * from './load.js';
export * from './show.js';
export * from './schema-walk.js';
export * from './path.js';

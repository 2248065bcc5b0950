/** The users file for SMTP AUTH: salted scrypt hashes, atomic writes, a cached verifier for the daemon. */
export * from './hash.js';
export * from './users-file.js';

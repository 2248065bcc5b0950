/**
 * Checks made before anything starts listening (and again before a reload is applied): every file
 * the configuration names must be readable and every directory it writes must be writable. Each
 * problem is one sentence naming the key and the path.
 */
import { access, mkdir, readFile, constants } from 'node:fs/promises';
import type { Config } from '../config/index.js';

async function readable(path: string): Promise<string | undefined> {
  try {
    await readFile(path);
    return undefined;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : (e.message ?? String(err));
  }
}

async function writableDir(path: string): Promise<string | undefined> {
  try {
    await mkdir(path, { recursive: true });
    await access(path, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return e.code === 'EACCES' ? 'permission denied' : (e.message ?? String(err));
  }
}

export async function checkStartupFiles(config: Config): Promise<string[]> {
  const problems: string[] = [];
  const file = async (key: string, path: string | undefined) => {
    if (!path) return;
    const why = await readable(path);
    if (why) problems.push(`${key}: cannot read ${path}: ${why}`);
  };
  const dir = async (key: string, path: string | undefined) => {
    if (!path) return;
    const why = await writableDir(path);
    if (why) problems.push(`${key}: cannot write to directory ${path}: ${why}`);
  };

  await file('tls.certFile', config.tls.certFile);
  await file('tls.keyFile', config.tls.keyFile);
  await file('tls.caFile', config.tls.caFile);
  for (const [i, c] of config.tls.certificates.entries()) {
    await file(`tls.certificates[${i}].certFile`, c.certFile);
    await file(`tls.certificates[${i}].keyFile`, c.keyFile);
  }
  if (config.users.file) {
    const why = await readable(config.users.file);
    // A users file that does not exist yet is an empty one (`mailyard user add` creates it);
    // one that exists but cannot be read is a start-up error.
    if (why && why !== 'no such file') problems.push(`users.file: cannot read ${config.users.file}: ${why}`);
  }
  for (const c of config.sendConnectors) {
    if (c.enabled && c.authenticationCredential) {
      await file(`sendConnectors "${c.name}" authenticationCredential.passwordFile`, c.authenticationCredential.passwordFile);
    }
  }
  await dir('server.dataDir', config.server.dataDir);
  await dir('server.logDir', config.server.logDir);
  await dir('transportService.pickupDirectoryPath', config.transportService.pickupDirectoryPath);
  await dir('transportService.replayDirectoryPath', config.transportService.replayDirectoryPath);
  for (const c of config.foreignConnectors) if (c.enabled) await dir(`foreignConnectors "${c.name}" dropDirectory`, c.dropDirectory);
  return problems;
}

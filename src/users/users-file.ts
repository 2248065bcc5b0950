/**
 * The users file for SMTP AUTH (`users.file`): YAML `{ users: [{ address, hash }] }`, written by
 * `mailyard user add/passwd/remove`. Addresses are compared case-insensitively and stored in lower
 * case. Writes are atomic (temp file, fsync, rename, fsync of the directory) and keep mode 0600, so
 * a reader never sees a half-written file. The daemon re-reads the file when its mtime changes.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { fsyncDir, writeFileAtomic } from '../platform/fs-atomic.js';
import { dirname } from 'node:path';
import { parse, stringify } from 'yaml';
import { DUMMY_HASH_PROMISE, hashPassword, verifyPassword } from './hash.js';

export interface UserEntry {
  readonly address: string;
  readonly hash: string;
}

export class UsersFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UsersFileError';
  }
}

export const normalizeLogin = (address: string): string => address.trim().toLowerCase();

/** Reads the file; a missing file is an empty list. Throws UsersFileError on bad content. */
export async function readUsers(file: string): Promise<UserEntry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UsersFileError(`cannot read users file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new UsersFileError(`users file ${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || doc === undefined) return [];
  const list = (doc as { users?: unknown }).users;
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new UsersFileError(`users file ${file}: "users" must be a list`);
  return list.map((u, i) => {
    const e = u as { address?: unknown; hash?: unknown };
    if (typeof e?.address !== 'string' || typeof e.hash !== 'string') {
      throw new UsersFileError(`users file ${file}: entry ${i + 1} needs "address" and "hash" strings`);
    }
    return { address: normalizeLogin(e.address), hash: e.hash };
  });
}

/** Replaces the file atomically. */
export async function writeUsers(file: string, users: readonly UserEntry[]): Promise<void> {
  const body = `# Mailyard SMTP AUTH accounts; manage with "mailyard user add|passwd|remove".\n${stringify({ users: users.map((u) => ({ address: u.address, hash: u.hash })) })}`;
  // The first `mailyard user add` on a fresh install creates the folder (e.g. ./var from a checkout).
  await mkdir(dirname(file), { recursive: true, mode: 0o750 });
  await writeFileAtomic(file, body, { fsync: true, mode: 0o600 });
  await fsyncDir(dirname(file));
}

export async function addUser(file: string, address: string, password: string): Promise<void> {
  const login = normalizeLogin(address);
  if (!/^[^\s@]+@[^\s@]+$/.test(login) && !/^[^\s@:]+$/.test(login)) throw new UsersFileError(`"${address}" is not a valid login (use an e-mail address)`);
  if (!password) throw new UsersFileError('the password must not be empty');
  const users = await readUsers(file);
  if (users.some((u) => u.address === login)) throw new UsersFileError(`user ${login} already exists (use "mailyard user passwd")`);
  await writeUsers(file, [...users, { address: login, hash: await hashPassword(password) }]);
}

export async function setPassword(file: string, address: string, password: string): Promise<void> {
  const login = normalizeLogin(address);
  if (!password) throw new UsersFileError('the password must not be empty');
  const users = await readUsers(file);
  if (!users.some((u) => u.address === login)) throw new UsersFileError(`no such user ${login}`);
  const hash = await hashPassword(password);
  await writeUsers(file, users.map((u) => (u.address === login ? { address: login, hash } : u)));
}

export async function removeUser(file: string, address: string): Promise<void> {
  const login = normalizeLogin(address);
  const users = await readUsers(file);
  if (!users.some((u) => u.address === login)) throw new UsersFileError(`no such user ${login}`);
  await writeUsers(file, users.filter((u) => u.address !== login));
}

/** Verifies one login against the file; does the same work whether or not the user exists. */
export async function verifyUser(file: string, address: string, password: string): Promise<boolean> {
  return new UsersStore(file).verify(address, password);
}

/** A cached view of the users file for the daemon: re-read when the file's mtime or size changes. */
export class UsersStore {
  #cache: { mtimeMs: number; size: number; users: Map<string, string> } | undefined;
  constructor(readonly file: string) {}

  async #load(): Promise<Map<string, string>> {
    let st: { mtimeMs: number; size: number } | undefined;
    try {
      st = await stat(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (!st) return new Map();
    if (this.#cache && this.#cache.mtimeMs === st.mtimeMs && this.#cache.size === st.size) return this.#cache.users;
    const users = new Map((await readUsers(this.file)).map((u) => [u.address, u.hash] as const));
    this.#cache = { mtimeMs: st.mtimeMs, size: st.size, users };
    return users;
  }

  /** true when the login exists and the password matches. Throws UsersFileError when the file is unreadable. */
  async verify(address: string, password: string): Promise<boolean> {
    const users = await this.#load();
    const hash = users.get(normalizeLogin(address));
    if (!hash) {
      await verifyPassword(await DUMMY_HASH_PROMISE(), password);
      return false;
    }
    return verifyPassword(hash, password);
  }
}

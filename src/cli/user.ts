/**
 * `mailyard user add|passwd|remove ADDRESS [--password-stdin]`: manage the users file named by
 * `users.file`. The password is read as one line from stdin with --password-stdin (for scripts),
 * otherwise prompted for twice on the terminal without echo. The lead wires these into commander;
 * each resolves on success and throws (UsersFileError or Error) with a message for the user.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { addUser, removeUser, setPassword } from '../users/users-file.js';

export interface UserCommandOptions {
  readonly passwordStdin?: boolean;
  readonly stdin?: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  readonly stdout?: Writable;
}

/** Reads the first line of a stream (without its line ending). */
export async function readLine(input: Readable): Promise<string> {
  const rl = createInterface({ input, crlfDelay: Infinity, terminal: false });
  try {
    for await (const line of rl) return line;
    return '';
  } finally {
    rl.close();
  }
}

/** Prompts on the terminal without echoing what is typed. */
export async function promptHidden(question: string, input: UserCommandOptions['stdin'], output: Writable): Promise<string> {
  if (!input || !input.isTTY || !input.setRawMode) throw new Error('no terminal to prompt on; use --password-stdin');
  output.write(question);
  input.setRawMode(true);
  input.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let buf = '';
      const onData = (chunk: Buffer) => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            input.off('data', onData);
            output.write('\n');
            return resolve(buf);
          }
          if (ch === '\u0003') {
            input.off('data', onData);
            output.write('\n');
            return reject(new Error('cancelled'));
          }
          if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
          else buf += ch;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
  }
}

async function getPassword(opts: UserCommandOptions): Promise<string> {
  const stdin = opts.stdin ?? (process.stdin as UserCommandOptions['stdin'])!;
  const stdout = opts.stdout ?? process.stderr;
  if (opts.passwordStdin) {
    const line = await readLine(stdin);
    if (!line) throw new Error('no password on stdin');
    return line;
  }
  const first = await promptHidden('Password: ', stdin, stdout);
  const again = await promptHidden('Password again: ', stdin, stdout);
  if (first !== again) throw new Error('the passwords do not match');
  if (!first) throw new Error('the password must not be empty');
  return first;
}

export async function userAdd(file: string, address: string, opts: UserCommandOptions = {}): Promise<void> {
  await addUser(file, address, await getPassword(opts));
}

export async function userPasswd(file: string, address: string, opts: UserCommandOptions = {}): Promise<void> {
  await setPassword(file, address, await getPassword(opts));
}

export async function userRemove(file: string, address: string): Promise<void> {
  await removeUser(file, address);
}

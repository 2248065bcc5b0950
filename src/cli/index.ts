/**
 * The command table of `mailyard` (CONTRACT.md "Command line"). Each command lives in its own
 * module; this file parses argv with commander and maps results to exit codes. It never touches
 * the running daemon's objects: `start` is injected by main.ts, queue verbs go through the admin API.
 */
import { Command, CommanderError } from 'commander';

export interface CliDeps {
  startDaemon(configPath: string): Promise<number>;
}

/** Where a command writes; `stdout`/`stderr` streams so the same object serves every command. */
export interface Output {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
}

const defaultOut: Output = { stdout: process.stdout, stderr: process.stderr };
const line = (t: string) => (t.endsWith('\n') ? t : `${t}\n`);

export async function runCli(argv: readonly string[], deps: CliDeps, out: Output = defaultOut): Promise<number | undefined> {
  let code: number | undefined;
  const set = (c: number) => {
    code = c;
  };
  const program = new Command('mailyard')
    .description('Mailyard mail transfer agent')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.stdout.write(s), writeErr: (s) => out.stderr.write(s) })
    .showHelpAfterError();

  const configOpt = ['-c, --config <file>', 'configuration file (default: $MAILYARD_CONFIG, /etc/mailyard/mailyard.yaml, ./config/mailyard.yaml)'] as const;

  program
    .command('start')
    .description('run the daemon in the foreground (JSON logs on stdout; SIGHUP reloads, SIGTERM stops)')
    .option(...configOpt)
    .action(async (o: { config?: string }) => {
      const { resolveConfigPath } = await import('./config.js');
      set(await deps.startDaemon(resolveConfigPath(o.config)));
    });

  const config = program.command('config').description('check or show the configuration');
  config
    .command('check')
    .description('validate; exit 0 when valid, otherwise print every problem as FILE:LINE:COL: message and exit 1')
    .option(...configOpt)
    .action(async (o: { config?: string }) => {
      const { configCheck, resolveConfigPath } = await import('./config.js');
      set(await configCheck(resolveConfigPath(o.config), out));
    });
  config
    .command('show')
    .description('print the effective configuration with every default filled in')
    .option(...configOpt)
    .action(async (o: { config?: string }) => {
      const { configShow, resolveConfigPath } = await import('./config.js');
      set(await configShow(resolveConfigPath(o.config), out));
    });

  program
    .command('route')
    .description('routing resolution without sending: candidates, the chosen connector and next hop')
    .argument('<address...>', 'recipient addresses')
    .option(...configOpt)
    .option('--size <bytes>', 'message size to route for', '0')
    .option('--json', 'print JSON')
    .action(async (addresses: string[], o: { config?: string; size: string; json?: boolean }) => {
      const cfg = await loadOrReport(o.config, out);
      if (!cfg) return set(1);
      const { parseSize } = await import('../model/units.js');
      const size = parseSize(o.size);
      if (size === undefined) {
        out.stderr.write(line(`mailyard route: bad --size ${o.size}`));
        return set(2);
      }
      const { routeCommand } = await import('./route.js');
      out.stdout.write(line(routeCommand(cfg, addresses, { size, json: Boolean(o.json) })));
      set(0);
    });

  program
    .command('connector')
    .description('Receive connector tools')
    .command('match')
    .description('which Receive connector would take a connection, and why')
    .requiredOption('--local <ip:port>', 'local endpoint the client connects to')
    .requiredOption('--remote <ip>', 'client address')
    .option(...configOpt)
    .option('--json', 'print JSON')
    .action(async (o: { local: string; remote: string; config?: string; json?: boolean }) => {
      const cfg = await loadOrReport(o.config, out);
      if (!cfg) return set(1);
      const { connectorMatch } = await import('./connector.js');
      const r = connectorMatch(cfg, o.local, o.remote);
      out.stdout.write(line(o.json ? JSON.stringify(r.json, null, 2) : r.text));
      set(r.ok ? 0 : 1);
    });

  const queue = program.command('queue').description('queue management against the running daemon (admin endpoint)');
  const queueVerb = (name: string, args: string, description: string, extra?: (c: Command) => Command) => {
    let c = queue.command(`${name}${args ? ` ${args}` : ''}`).description(description).option(...configOpt).option('--json', 'print JSON');
    if (extra) c = extra(c);
    c.action(async (...a: unknown[]) => {
      const opts = a[a.length - 2] as { config?: string; json?: boolean; ndr?: boolean; withNdr?: boolean };
      const positional = a.slice(0, -2).filter((x): x is string => typeof x === 'string');
      const cfg = await loadOrReport(opts.config, out);
      if (!cfg) return set(1);
      const { queueCommand } = await import('./queue.js');
      set(await queueCommand(cfg, name, positional, opts, { stdout: (t) => out.stdout.write(line(t)), stderr: (t) => out.stderr.write(line(t)) }));
    });
  };
  queueVerb('list', '', 'list queues');
  queueVerb('messages', '[queue]', 'list messages, optionally of one queue');
  queueVerb('retry', '<queue>', 'retry a queue now (the Unreachable queue is resubmitted to the categorizer)');
  queueVerb('suspend', '<id-or-queue>', 'suspend a message (ID) or a queue (Submission, Unreachable, a next hop); queue suspension survives restarts');
  queueVerb('resume', '<id-or-queue>', 'resume a message or a queue; resuming a poison message resubmits it');
  queueVerb('remove', '<id>', 'remove a message', (c) => c.option('--ndr', 'send a non-delivery report to the sender'));
  queueVerb('export', '<id>', 'print a message in Replay-directory format');

  program
    .command('tracking')
    .description('message tracking log')
    .command('search')
    .description('search the message tracking log')
    .option(...configOpt)
    .option('--sender <address>')
    .option('--recipient <address>')
    .option('--event <id>', 'RECEIVE, DELIVER, SEND, FAIL, DEFER, DSN, ...')
    .option('--message-id <id>', 'internet Message-ID or internal id')
    .option('--start <time>', 'ISO time')
    .option('--end <time>', 'ISO time')
    .option('--json', 'print JSON')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const cfg = await loadOrReport(o.config as string | undefined, out);
      if (!cfg) return set(1);
      const { trackingSearchCommand } = await import('./tracking.js');
      set(await trackingSearchCommand(cfg, o, out));
    });

  const user = program.command('user').description('manage the SMTP AUTH users file (users.file)');
  for (const verb of ['add', 'passwd', 'remove'] as const) {
    const c = user.command(`${verb} <address>`).option(...configOpt);
    if (verb !== 'remove') c.option('--password-stdin', 'read the password as one line from stdin');
    c.description(verb === 'add' ? 'add a user (prompts for the password)' : verb === 'passwd' ? 'change a password' : 'remove a user');
    c.action(async (address: string, o: { config?: string; passwordStdin?: boolean }) => {
      const cfg = await loadOrReport(o.config, out);
      if (!cfg) return set(1);
      if (!cfg.users.file) {
        out.stderr.write(line(`mailyard user ${verb}: users.file is not set in ${cfg.source}`));
        return set(1);
      }
      const { userAdd, userPasswd, userRemove } = await import('./user.js');
      const opts = { passwordStdin: Boolean(o.passwordStdin) };
      try {
        if (verb === 'add') await userAdd(cfg.users.file, address, opts);
        else if (verb === 'passwd') await userPasswd(cfg.users.file, address, opts);
        else await userRemove(cfg.users.file, address);
      } catch (err) {
        out.stderr.write(line(`mailyard user ${verb}: ${err instanceof Error ? err.message : String(err)}`));
        return set(1);
      }
      out.stdout.write(line(`${verb === 'add' ? 'added' : verb === 'passwd' ? 'password changed for' : 'removed'} ${address}`));
      set(0);
    });
  }

  try {
    await program.parseAsync(argv as string[]);
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    out.stderr.write(line(`mailyard: ${err instanceof Error ? err.message : String(err)}`));
    return 1;
  }
  return code;
}

/** Loads the config for a one-shot command; prints the problems and returns undefined when invalid. */
async function loadOrReport(explicit: string | undefined, out: Output) {
  const { loadConfigFile, formatIssue } = await import('../config/index.js');
  const { resolveConfigPath } = await import('./config.js');
  const r = await loadConfigFile(resolveConfigPath(explicit));
  if (!r.ok) {
    for (const i of r.issues) out.stderr.write(line(formatIssue(i)));
    return undefined;
  }
  return r.config;
}

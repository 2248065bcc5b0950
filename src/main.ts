/** Entry point of the `mailyard` command: hands argv to the CLI; the daemon is injected here. */
import { runCli } from './cli/index.js';
import { runDaemon } from './daemon/index.js';

const code = await runCli(process.argv, { startDaemon: runDaemon });
if (code !== undefined) process.exitCode = code;

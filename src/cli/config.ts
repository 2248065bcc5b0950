/**
 * `mailyard config check` and `mailyard config show`, and where the configuration file is found.
 * check: exit 0 when valid (warnings go to stderr as FILE:LINE:COL: warning: ...), otherwise exit 1
 * after printing every problem as FILE:LINE:COL: message. show: the effective configuration as YAML
 * on stdout (problems and warnings on stderr). Neither checks that referenced files exist: that
 * happens when the daemon starts.
 */
import { chooseConfigPath, formatIssue, loadConfigFile, showConfig } from '../config/index.js';

export interface CliOutput {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
}

export { LOCAL_CONFIG_PATH, SYSTEM_CONFIG_PATH } from '../config/index.js';

/** `--config`, else $MAILYARD_CONFIG, else /etc/mailyard/mailyard.yaml if it exists, else ./config/mailyard.yaml. */
export function resolveConfigPath(explicit?: string, env: NodeJS.ProcessEnv = process.env, exists?: (p: string) => boolean): string {
  return chooseConfigPath(explicit, env, exists);
}

export async function configCheck(path: string, out: CliOutput): Promise<number> {
  const r = await loadConfigFile(path);
  if (!r.ok) {
    for (const i of r.issues) out.stderr.write(`${formatIssue(i)}\n`);
    return 1;
  }
  for (const w of r.warnings) out.stderr.write(`${formatIssue(w)}\n`);
  out.stdout.write(`${path}: configuration is valid\n`);
  return 0;
}

export async function configShow(path: string, out: CliOutput): Promise<number> {
  const r = await loadConfigFile(path);
  if (!r.ok) {
    for (const i of r.issues) out.stderr.write(`${formatIssue(i)}\n`);
    return 1;
  }
  for (const w of r.warnings) out.stderr.write(`${formatIssue(w)}\n`);
  out.stdout.write(showConfig(r.config));
  return 0;
}

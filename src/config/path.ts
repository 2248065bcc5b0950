/**
 * Which configuration file to read (CONTRACT.md): `--config FILE`, else $MAILYARD_CONFIG, else
 * /etc/mailyard/mailyard.yaml if it exists, else ./config/mailyard.yaml. The environment and the
 * existence test are parameters (only cli/ and daemon/ read process.env); cli/config.ts has the
 * `resolveConfigPath` that fills them in.
 */
import { existsSync } from 'node:fs';

export const SYSTEM_CONFIG_PATH = '/etc/mailyard/mailyard.yaml';
export const LOCAL_CONFIG_PATH = './config/mailyard.yaml';

export function chooseConfigPath(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  exists: (p: string) => boolean = existsSync,
): string {
  if (explicit) return explicit;
  if (env.MAILYARD_CONFIG) return env.MAILYARD_CONFIG;
  if (exists(SYSTEM_CONFIG_PATH)) return SYSTEM_CONFIG_PATH;
  return LOCAL_CONFIG_PATH;
}

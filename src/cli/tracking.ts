/** `mailyard tracking search`: the reader lives in logging/tracking-search.ts; this adapts the output. */
import { trackingSearchCommand as search } from '../logging/tracking-search.js';
import type { Config } from '../config/index.js';

export async function trackingSearchCommand(
  config: Config,
  o: Record<string, string | boolean | undefined>,
  out: { stdout: { write(s: string): unknown }; stderr: { write(s: string): unknown } },
): Promise<number> {
  const nl = (t: string) => (t.endsWith('\n') ? t : `${t}\n`);
  return search(config, o, { stdout: (t) => out.stdout.write(nl(t)), stderr: (t) => out.stderr.write(nl(t)) });
}

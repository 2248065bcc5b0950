/**
 * The composition root: builds every service from a Config, handles signals, reloads and shuts
 * down. The only module that wires concrete classes together, reads process.env for the daemon,
 * installs signal handlers and decides the exit code.
 *
 * Start-up is all-or-nothing: a missing certificate, an unreadable users file or a port in use is
 * reported by name and everything already started is stopped again before exiting 1.
 */
import { loadConfigFile, formatIssue, type Config } from '../config/index.js';
import { createLogger, type Logger } from '../logging/logger.js';
import { buildServices, type Services } from './services.js';
import { checkStartupFiles } from './preflight.js';
import { applyV8Flags, daemonV8Flags } from '../platform/v8-tuning.js';

export async function runDaemon(configPath: string): Promise<number> {
  applyV8Flags(daemonV8Flags(process.execArgv, process.env.NODE_OPTIONS));
  const loaded = await loadConfigFile(configPath);
  if (!loaded.ok) {
    for (const i of loaded.issues) process.stderr.write(`${formatIssue(i)}\n`);
    process.stderr.write(`mailyard: not started: ${loaded.issues.length} problem(s) in ${configPath}\n`);
    return 1;
  }
  let config = loaded.config;
  const logger = createLogger(config.server.logLevel);
  for (const w of loaded.warnings) logger.warn({ code: 'CONFIG_WARNING' }, formatIssue(w));

  const preflight = await checkStartupFiles(config);
  if (preflight.length > 0) {
    for (const p of preflight) {
      logger.fatal({ code: 'STARTUP_FAILED' }, p);
      process.stderr.write(`mailyard: ${p}\n`);
    }
    logger.flush();
    return 1;
  }

  let services: Services;
  try {
    services = await buildServices(config, logger);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    logger.fatal({ code: 'STARTUP_FAILED', err }, `not started: ${msg}`);
    process.stderr.write(`mailyard: not started: ${msg}\n`);
    logger.flush();
    return 1;
  }
  logger.info({ code: 'STARTED', config: configPath, listeners: services.listening() }, 'mailyard started');

  return await new Promise<number>((resolveExit) => {
    let stopping = false;
    let reloading: Promise<void> = Promise.resolve();

    const reload = () => {
      reloading = reloading.then(async () => {
        logger.info({ code: 'RELOAD' }, `SIGHUP: re-reading ${configPath}`);
        const next = await loadConfigFile(configPath);
        if (!next.ok) {
          for (const i of next.issues) logger.error({ code: 'RELOAD_REFUSED' }, formatIssue(i));
          logger.error({ code: 'RELOAD_REFUSED' }, `reload refused: ${next.issues.length} problem(s); the running configuration is unchanged`);
          return;
        }
        const problems = await checkStartupFiles(next.config);
        if (problems.length > 0) {
          for (const p of problems) logger.error({ code: 'RELOAD_REFUSED' }, p);
          return;
        }
        try {
          await services.reload(next.config);
          config = next.config;
          logger.info({ code: 'RELOADED', listeners: services.listening() }, 'configuration reloaded');
        } catch (err) {
          logger.error({ code: 'RELOAD_FAILED', err }, `reload failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      });
    };

    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ code: 'STOPPING', signal }, `${signal}: stopping`);
      void reloading
        .then(() => services.stop(config.transportService.shutdownTimeout))
        .then(
          () => {
            logger.info({ code: 'STOPPED' }, 'mailyard stopped');
            logger.flush();
            resolveExit(0);
          },
          (err: unknown) => {
            logger.error({ code: 'STOP_FAILED', err }, 'error while stopping');
            logger.flush();
            resolveExit(1);
          },
        );
    };

    process.on('SIGHUP', reload);
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });
}

export type { Config, Logger };

import type { Command } from 'commander';
import { redactUrl, settingsFromEnv } from '../../queue/connection.js';
import { DEFAULT_DASHBOARD_PORT } from '../../ops/dashboard/defaults.js';
import { EXIT, portNumber, type SetExit } from '../common.js';

/** `layertap dashboard`: serve Bull Board and the runs page until a signal. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('dashboard')
    .description('serve Bull Board for the queues and a page of runs (status, rows, rows/s, errors, output) until SIGTERM/SIGINT')
    .option('--port <n>', `port to listen on (default ${DEFAULT_DASHBOARD_PORT})`, portNumber('--port'))
    .option('--host <host>', 'interface to listen on (default 127.0.0.1; 0.0.0.0 for every interface: the board can retry and delete jobs, so put it behind authentication)')
    .option('--read-only', 'Bull Board without retry, promote, clean, pause or delete actions')
    .action(async (o: { port?: number; host?: string; readOnly?: boolean }) => {
      const [{ createLogger }, { startDashboard }] = await Promise.all([import('../../ops/logger.js'), import('../../ops/dashboard/server.js')]);
      const logger = createLogger({ bindings: { component: 'dashboard' } });
      const settings = settingsFromEnv();
      let dash: Awaited<ReturnType<typeof startDashboard>>;
      try {
        dash = await startDashboard({
          settings,
          port: o.port ?? DEFAULT_DASHBOARD_PORT,
          ...(o.host ? { host: o.host } : {}),
          readOnly: !!o.readOnly,
          onError: (e) => logger.error(`layertap dashboard: ${e.message}`),
        });
      } catch (e) {
        logger.error(`layertap: ${e instanceof Error ? e.message : String(e)}`);
        setExit(EXIT.failed);
        return;
      }
      logger.info({ url: dash.url }, `layertap dashboard: ready at ${dash.url}/runs (runs) and ${dash.url}/queues (Bull Board); redis ${redactUrl(settings.redisUrl)}, prefix ${settings.prefix}`);
      const sig = await new Promise<string>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      logger.info(`layertap dashboard: ${sig}: stopping`);
      await dash.close();
    });
}

import { InvalidArgumentError, Option, type Command } from 'commander';
import { redactUrl, settingsFromEnv } from '../../queue/connection.js';
import { allowedHostName, MIN_TOKEN_LENGTH } from '../../ops/dashboard/access.js';
import { DEFAULTS } from '../../config/defaults.js';
import { err, examples, EXIT, portNumber, type SetExit } from '../common.js';

/** Parsed options of `layertap dashboard`. */
interface DashboardCliOptions {
  port?: number;
  host?: string;
  readOnly?: boolean;
  allowActions?: boolean;
  token?: string;
  allowHost?: string[];
}

/** Option parser of --allow-host: a host name (a port is ignored), collected over repeats. */
function hostNames(value: string, previous: string[] = []): string[] {
  try {
    return [...previous, allowedHostName(value)];
  } catch (e) {
    throw new InvalidArgumentError(`--allow-host: ${(e as Error).message}`);
  }
}

function tokenValue(value: string): string {
  if (value.length < MIN_TOKEN_LENGTH) throw new InvalidArgumentError(`--token must be at least ${MIN_TOKEN_LENGTH} characters`);
  return value;
}

/** `layertap dashboard`: serve Bull Board and the runs page until a signal. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('dashboard')
    .description('serve Bull Board for the queues and a page of runs (status, rows, rows/s, errors, output) until SIGTERM/SIGINT')
    .addHelpText('after', examples('layertap dashboard', 'LAYERTAP_DASHBOARD_TOKEN=... layertap dashboard --host 0.0.0.0 --allow-host dash.example.com'))
    .option('--port <n>', `port to listen on (default ${DEFAULTS.ops.dashboardPort})`, portNumber('--port'))
    .option('--host <host>', 'interface to listen on (default 127.0.0.1); on any other, every page and API needs the token')
    .addOption(new Option('--allow-actions', "Bull Board's retry, promote, clean, pause, add and delete actions; they need the token").conflicts('readOnly'))
    .option('--read-only', 'no queue actions (the default)')
    .option(
      '--token <token>',
      `access token, at least ${MIN_TOKEN_LENGTH} characters (default LAYERTAP_DASHBOARD_TOKEN; when neither is set and one is needed, one is generated and printed once)`,
      tokenValue,
    )
    .option(
      '--allow-host <name>',
      'also answer requests for this Host name, e.g. the name of a proxy in front of it (repeatable; localhost, 127.0.0.1, [::1] and --host always)',
      hostNames,
    )
    .action(async (o: DashboardCliOptions) => {
      const [{ createLogger }, { startDashboard }] = await Promise.all([import('../../ops/logger.js'), import('../../ops/dashboard/server.js')]);
      const logger = createLogger({ bindings: { component: 'dashboard' } });
      const settings = settingsFromEnv();
      const envToken = process.env.LAYERTAP_DASHBOARD_TOKEN;
      if (o.token === undefined && envToken && envToken.length < MIN_TOKEN_LENGTH) {
        err(`layertap: LAYERTAP_DASHBOARD_TOKEN must be at least ${MIN_TOKEN_LENGTH} characters`);
        setExit(EXIT.usage);
        return;
      }
      // an empty variable (as compose passes one that is not set) means none
      const token = o.token ?? (envToken || undefined);
      let dash: Awaited<ReturnType<typeof startDashboard>>;
      try {
        dash = await startDashboard({
          settings,
          port: o.port ?? DEFAULTS.ops.dashboardPort,
          ...(o.host ? { host: o.host } : {}),
          allowActions: !!o.allowActions,
          ...(token !== undefined ? { token } : {}),
          allowHosts: o.allowHost ?? [],
          onError: (e) => logger.error(`layertap dashboard: ${e.message}`),
          onWarning: (m) => logger.warn(`layertap dashboard: ${m}`),
        });
      } catch (e) {
        logger.error(`layertap: ${e instanceof Error ? e.message : String(e)}`);
        setExit(EXIT.failed);
        return;
      }
      const mode = o.allowActions ? 'queue actions on (with the token)' : 'read-only';
      const access = dash.tokenFor === null ? 'no token' : dash.tokenFor === 'actions' ? 'token for actions' : 'token for every page';
      logger.info(
        { url: dash.url },
        `layertap dashboard: ready at ${dash.url}/runs (runs) and ${dash.url}/queues (Bull Board); ${mode}, ${access}; redis ${redactUrl(settings.redisUrl)}, prefix ${settings.prefix}`,
      );
      if (dash.tokenGenerated) {
        // straight to stderr, whatever the log level: without it nobody can get in
        err(`layertap dashboard: access token generated for this process (set LAYERTAP_DASHBOARD_TOKEN to choose one); open ${dash.loginUrl}`);
      }
      const sig = await new Promise<string>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      logger.info(`layertap dashboard: ${sig}: stopping`);
      await dash.close();
    });
}

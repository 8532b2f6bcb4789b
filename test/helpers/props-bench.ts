// What the property tests share: one model thread pool per thread count (loaded once, used by
// the shard-level cases directly and by the workers of the queue-level cases), each suite's jobs
// resolved once, and the references; and how one case of either level is run and checked.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseJob, type JobConfig, type ResolvedJob } from '../../src/config/index.js';
import { processShard, resolveJob } from '../../src/pipeline/index.js';
import type { ShardResult } from '../../src/pipeline/types.js';
import { createSource } from '../../src/sources/registry.js';
import type { ShardSpec } from '../../src/sources/types.js';
import { MANIFEST, runPrefix } from '../../src/storage/layout.js';
import { modelSpecOf } from '../../src/workers/model-spec.js';
import { EmbedPool } from '../../src/workers/pool.js';
import { THREADS, type QueueCase, type QueueRun, type ShardCase } from './props-cases.js';
import { invariantProblems, readReference, readRunFiles, type Reference } from './props-check.js';
import { applyEdits, poolRows, sourceRows, type Cell, type Row } from './props-datasets.js';
import { PropsQueue } from './props-queue.js';
import { columnsOf, jobInput, makeSuites, type Suite } from './props-suites.js';

/** The largest difference from the reference seen so far, over every case of a property. */
export interface Worst {
  diff: number;
}

export class PropsBench {
  private readonly jobs = new Map<string, ResolvedJob>();
  private readonly refs = new Map<string, Reference>();
  private queue: PropsQueue | null = null;
  private cases = 0;

  private constructor(
    readonly dir: string,
    readonly suites: Awaited<ReturnType<typeof makeSuites>>,
    private readonly pools: Map<number, EmbedPool>,
  ) {}

  static async start(dir: string): Promise<PropsBench> {
    const pools = new Map(THREADS.map((t) => [t, new EmbedPool({ threads: t, onError: () => undefined })]));
    return new PropsBench(dir, await makeSuites(), pools);
  }

  async close(): Promise<void> {
    // the workers close the pools they were given
    if (this.queue) await this.queue.close();
    else await Promise.all([...this.pools.values()].map((p) => p.close()));
  }

  /**
   * Resolves each variant's job and embeds its reference, then loads the variants' models into
   * every thread of every pool, so that a property's time bound is spent on cases. A thread keeps
   * two models: prepare the suite whose cases come next.
   */
  async prepare(suite: Suite): Promise<void> {
    for (const variant of suite.variants) {
      await this.reference(suite, variant);
      const model = modelSpecOf(this.jobs.get(`${suite.label}/${variant}`)!);
      await Promise.all([...this.pools.values()].map((p) => p.warmUp(model)));
    }
  }

  /** The reference of a suite's variant: each pool entry embedded alone (batch 1, one thread), by processShard; made once. */
  async reference(suite: Suite, variant: string): Promise<Reference> {
    const key = `${suite.label}/${variant}`;
    let ref = this.refs.get(key);
    if (!ref) {
      const dir = join(this.dir, `ref-${suite.label}-${variant}`);
      await mkdir(dir, { recursive: true });
      const kind = suite.kind(variant);
      const rows = poolRows(kind);
      const source = await kind.write(dir, rows);
      const job = await resolveJob(parseJob(jobInput(suite, variant, source, { batchSize: 1, shardSize: rows.length, format: 'arrow' }, join(dir, 'out'))));
      this.jobs.set(key, job);
      const out = await this.processShards(job, { threads: 1, concurrency: 1, maxInFlight: undefined, groupByLength: true });
      ref = await readReference(kind, rows, out.dir);
      this.refs.set(key, ref);
    }
    return ref;
  }

  /** A fresh folder for a case, removed when `fn` is done. */
  private async inCaseDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = join(this.dir, `case-${this.cases++}`);
    await mkdir(dir, { recursive: true });
    try {
      return await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  // ---- shard level

  /** Plans `job` into shards and processes them, `concurrency` at a time on the pool of `threads` threads. */
  private async processShards(job: ResolvedJob, c: Pick<ShardCase, 'threads' | 'concurrency' | 'maxInFlight' | 'groupByLength'>) {
    const source = await createSource(job.source);
    const shards: ShardSpec[] = [];
    try {
      for await (const s of source.plan(job.shardSize)) shards.push(s);
    } finally {
      await source.close();
    }
    const runId = `props-${this.cases}`;
    const pool = this.pools.get(c.threads)!;
    const results: ShardResult[] = [];
    let next = 0;
    const lane = async () => {
      while (next < shards.length) {
        const shard = shards[next++]!;
        results.push(await processShard({ runId, job, shard }, { pool, maxInFlight: c.maxInFlight, groupByLength: c.groupByLength }));
      }
    };
    await Promise.all(Array.from({ length: c.concurrency }, lane));
    return { dir: join(job.sink.uri, runPrefix(job.name, job.fingerprint, runId)), results };
  }

  /** Runs a shard-level case; returns what is wrong with its output, in words (nothing when the invariants hold). */
  async shardProblems(suite: Suite, c: ShardCase, worst: Worst): Promise<string[]> {
    const kind = suite.kind(c.variant);
    const ref = await this.reference(suite, c.variant);
    return this.inCaseDir(async (dir) => {
      const source = await kind.write(dir, c.rows);
      // resolved once per variant; a case changes only what resolving merely checks
      const template = this.jobs.get(`${suite.label}/${c.variant}`)!;
      const job: ResolvedJob = {
        ...template,
        source: { ...template.source, ...source },
        batchSize: c.batchSize,
        shardSize: c.shardSize,
        sink: { uri: join(dir, 'out'), format: c.format },
      };
      const out = await this.processShards(job, c);
      const problems = invariantProblems(kind, c.rows, await readRunFiles(out.dir), ref, columnsOf(suite, c.variant), worst);
      const good = sourceRows(kind, c.rows).filter((r) => typeof r.cell === 'number').length;
      const rows = out.results.reduce((n, r) => n + r.rows, 0);
      const errors = out.results.reduce((n, r) => n + r.errorRows, 0);
      if (rows !== good || errors !== c.rows.length - good)
        problems.push(`shard results say ${rows} rows + ${errors} errors, expected ${good} + ${c.rows.length - good}`);
      return problems;
    });
  }

  // ---- queue level

  /** Workers and clients on the pools, started at the first queue-level case. */
  private async queued(config: JobConfig, run: QueueRun) {
    this.queue ??= await PropsQueue.start([...this.pools.values()]);
    return this.queue.run(config, run.threads, run.window);
  }

  /** Runs a queue-level case (and its incremental second run); returns what is wrong, in words. */
  async queueProblems(suite: Suite, c: QueueCase, worst: Worst): Promise<string[]> {
    const kind = suite.kind(c.variant);
    const ref = await this.reference(suite, c.variant);
    const columns = columnsOf(suite, c.variant);
    return this.inCaseDir(async (dir) => {
      const run = async (rows: Row[], r: QueueRun, label: string) => {
        const source = await kind.write(dir, rows);
        const s = await this.queued(parseJob(jobInput(suite, c.variant, source, r, join(dir, 'out'), c.incremental !== null)), r);
        if (s.status !== 'committed') return { s, problems: [`${label}: run ${s.status}: ${s.error ?? JSON.stringify(s.failedShards)}`] };
        const good = sourceRows(kind, rows).filter((x) => typeof x.cell === 'number').length;
        const problems = invariantProblems(kind, rows, await readRunFiles(s.output.uri), ref, columns, worst).map((p) => `${label}: ${p}`);
        if (s.rows !== good || s.errorRows !== rows.length - good) {
          problems.push(`${label}: status says ${s.rows} rows + ${s.errorRows} errors, expected ${good} + ${rows.length - good}`);
        }
        return { s, problems };
      };
      const first = await run(c.rows, c.run, 'first run');
      if (!c.incremental || first.problems.length > 0) return first.problems;
      const rows = applyEdits(kind, c.rows, c.incremental.edits);
      const second = await run(rows, c.incremental.run, 'incremental run');
      if (second.problems.length > 0) return second.problems;
      // rows whose content the first run embedded are carried over, the others computed: without
      // this, a carry-over that never happens would pass unseen
      const before = new Set<Cell>(c.rows.map((r) => r.cell).filter((x) => typeof x === 'number'));
      const good = rows.filter((r) => typeof r.cell === 'number');
      const carried = good.filter((r) => before.has(r.cell)).length;
      const manifest = JSON.parse(await readFile(join(second.s.output.uri, MANIFEST), 'utf8')) as { incremental?: unknown };
      const want = { baseRunId: before.size > 0 ? first.s.runId : null, carriedRows: carried, embeddedRows: good.length - carried };
      if (JSON.stringify(manifest.incremental) !== JSON.stringify(want)) {
        return [`incremental run: the manifest says ${JSON.stringify(manifest.incremental)}, expected ${JSON.stringify(want)}`];
      }
      return [];
    });
  }
}

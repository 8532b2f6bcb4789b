import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/index.js';
import { PropsBench, type Worst } from '../helpers/props-bench.js';
import { describeQueueCase, describeShardCase, queueCaseArb, shardCaseArb, type QueueCase, type ShardCase } from '../helpers/props-cases.js';
import { propsRun, type PropsBudget } from '../helpers/props-settings.js';
import type { Cell } from '../helpers/props-datasets.js';
import { pytorchDifference, type Suite } from '../helpers/props-suites.js';

// The invariants of docs/reliability.md, over random configurations: a row's features depend
// on that row and the job only (not on threads, batch or shard size, the window's sort order,
// error rows beside it, the part format, or an incremental run's carry-over), and every source
// row ends exactly once, in a part file or as an error row. Each row is held to its content
// embedded alone (batch 1, one thread), which is itself held to PyTorch's captures.

/** Rows per generated dataset: shard-level cases are cheap, queue-level ones cost a run (two when incremental). */
const SHARD_ROWS = 16;
const QUEUE_ROWS = 12;

/** Per suite, what each property may take in `npm test`. */
const BUDGETS: Record<Suite['label'], { shard: PropsBudget; queue: PropsBudget }> = {
  text: { shard: { numRuns: 60, budgetMs: 9_000 }, queue: { numRuns: 14, budgetMs: 9_000 } },
  tensor: { shard: { numRuns: 30, budgetMs: 4_000 }, queue: { numRuns: 8, budgetMs: 5_000 } },
  image: { shard: { numRuns: 30, budgetMs: 4_000 }, queue: { numRuns: 8, budgetMs: 5_000 } },
};

/**
 * Cases the properties found, kept as regular tests. The first two are what the properties shrank
 * to with the batcher's one-batch window taken as sorted (a window of one batch, sorted by
 * length, was written in sorted order): one thread, a shard of two rows in one batch; the third
 * is a shard of two threads thinned to one batch by error rows.
 */
const KNOWN_SHARD_CASES: Array<[string, 'text', ShardCase]> = [
  [
    'one thread, a shard of one batch',
    'text',
    {
      variant: 'jsonl/pooled',
      threads: 1,
      batchSize: 2,
      shardSize: 2,
      format: 'arrow',
      concurrency: 1,
      maxInFlight: undefined,
      groupByLength: true,
      rows: [
        { key: 5, cell: 0 },
        { key: 15, cell: 9 },
      ],
    },
  ],
];
const KNOWN_QUEUE_CASES: Array<[string, 'text', QueueCase]> = [
  [
    'one thread, a shard of one batch',
    'text',
    {
      variant: 'jsonl/pooled',
      run: { threads: 1, batchSize: 2, shardSize: 2, format: 'arrow', window: 256 },
      rows: [
        { key: 5, cell: 0 },
        { key: 15, cell: 9 },
      ],
      incremental: null,
    },
  ],
  [
    'two threads, a shard thinned to one batch by error rows',
    'text',
    {
      variant: 'jsonl/tokens',
      run: { threads: 2, batchSize: 4, shardSize: 8, format: 'parquet', window: 256 },
      rows: [0, 'null', 'null', 'null', 'null', 'null', 9, 5].map((cell, i) => ({ key: 10 * i + 5, cell: cell as Cell })),
      incremental: null,
    },
  ],
];

/**
 * Fails with the case's configuration and every problem in words (an assertion on the list
 * would elide it), or with the configuration in front of whatever the case threw.
 */
async function holds(what: string, problems: Promise<string[]>): Promise<void> {
  const found = await problems.catch((err: unknown) => {
    throw new Error(`${what}\n${err instanceof Error ? err.message : String(err)}`, { cause: err });
  });
  if (found.length > 0) throw new Error(`${what}\n${found.join('\n')}`);
}

describe('invariants over the configuration space', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let bench: PropsBench;

  beforeAll(async () => {
    tmp = await tempDir('layertap-props-');
    bench = await PropsBench.start(tmp.dir);
  });
  afterAll(async () => {
    await bench?.close();
    await tmp?.remove();
  });

  describe('cases found before', () => {
    it.each(KNOWN_SHARD_CASES)('shard by shard: %s', async (_, label, c) => {
      const suite = bench.suites[label];
      await holds(describeShardCase(suite, c), bench.shardProblems(suite, c, { diff: 0 }));
    });
    it.each(KNOWN_QUEUE_CASES)('through the queue: %s', async (_, label, c) => {
      const suite = bench.suites[label];
      await holds(describeQueueCase(suite, c), bench.queueProblems(suite, c, { diff: 0 }));
    });
  });

  for (const label of ['text', 'tensor', 'image'] as const) {
    describe(label, () => {
      it(`embeds each pool entry alone (the reference)${label === 'image' ? '' : ' as PyTorch does on the fixtures'}`, async () => {
        const suite = bench.suites[label];
        // loads this suite's models into every thread, so that the properties below spend their time on cases
        await bench.prepare(suite);
        for (const variant of suite.variants) {
          const ref = await bench.reference(suite, variant);
          expect(ref.features.size, `${label} (${variant})`).toBe(suite.kind(variant).poolSize);
          const diff = await pytorchDifference(suite, variant, ref);
          if (diff === null) continue;
          console.log(`[props] reference ${label} (${variant}) vs PyTorch: largest difference ${diff.toExponential(2)}`);
          expect(diff, `${label} (${variant})`).toBeLessThanOrEqual(1e-5);
        }
      });

      const shard = propsRun<[ShardCase]>(`shards ${label}`, BUDGETS[label].shard);
      it(
        'shard by shard: every row gets its reference features and ends once (threads, batch and shard sizes, shards at once, batches in flight, length grouping, error rows, formats)',
        async () => {
          const suite = bench.suites[label];
          const worst: Worst = { diff: 0 };
          await fc.assert(
            fc.asyncProperty(shardCaseArb(suite, SHARD_ROWS), async (c) => {
              await holds(describeShardCase(suite, c), bench.shardProblems(suite, c, worst));
            }),
            shard.parameters(),
          );
          console.log(`[props] shards ${label}: largest difference from the reference ${worst.diff.toExponential(2)}`);
        },
        shard.timeoutMs,
      );

      const queue = propsRun<[QueueCase]>(`queue ${label}`, BUDGETS[label].queue);
      it(
        'through the queue: every row gets its reference features and ends once (threads, batch and shard sizes, error rows, formats, incremental runs)',
        async () => {
          const suite = bench.suites[label];
          const worst: Worst = { diff: 0 };
          await fc.assert(
            fc.asyncProperty(queueCaseArb(suite, QUEUE_ROWS), async (c) => {
              await holds(describeQueueCase(suite, c), bench.queueProblems(suite, c, worst));
            }),
            queue.parameters(),
          );
          console.log(`[props] queue ${label}: largest difference from the reference ${worst.diff.toExponential(2)}`);
        },
        queue.timeoutMs,
      );
    });
  }
});

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimSnapshot } from '../../src/queue/dedup.js';
import { canMove, ENDED_RECORD_TTL_S, RUN_TRANSITIONS, RunLifecycle } from '../../src/queue/lifecycle.js';
import { RunRegistry } from '../../src/queue/run-registry.js';
import { RunSpecStore } from '../../src/queue/run-specs.js';
import { FINAL_STATUSES, type RunRecord, type RunStatus } from '../../src/queue/types.js';
import { REDIS_URL, testPrefix } from '../helpers/index.js';
import { endedRunLeftovers } from '../helpers/redis-keys.js';

const STATUSES = Object.keys(RUN_TRANSITIONS) as RunStatus[];

function record(runId: string, status: RunStatus): RunRecord {
  return {
    runId,
    name: 'ds',
    fingerprint: 'f00d',
    status,
    trigger: 'manual',
    createdAt: Date.now(),
    shards: 2,
    totalRows: 4,
    rows: 0,
    errorRows: 0,
    failedShards: [],
    outputUri: '/out/ds/f00d/' + runId,
  };
}

// Every pair of statuses, against a real Redis: a move happens exactly when the table allows it,
// an ended run lets go of what it held, and writers that race each other all land.
describe('the run lifecycle table', () => {
  let redis: Redis;
  const { prefix, cleanup } = testPrefix();
  let registry: RunRegistry;
  let specs: RunSpecStore;
  let lifecycle: RunLifecycle;

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
    registry = new RunRegistry(redis, prefix);
    specs = new RunSpecStore(redis, prefix);
    lifecycle = new RunLifecycle(redis, prefix, registry, specs);
  });
  afterAll(async () => {
    await cleanup();
    redis.disconnect();
  });

  it('ends only in final statuses, and no final status is left', () => {
    for (const s of FINAL_STATUSES) expect(RUN_TRANSITIONS[s]).toEqual([]);
    for (const s of STATUSES.filter((x) => !FINAL_STATUSES.includes(x))) expect(RUN_TRANSITIONS[s].length).toBeGreaterThan(0);
    // a run can always be ended from any status it may be in while work goes on
    for (const s of ['planning', 'queued', 'running', 'cancelling'] as const) expect(canMove(s, 'failed')).toBe(true);
  });

  it.each(STATUSES.flatMap((from) => STATUSES.map((to) => [from, to] as const)))('%s -> %s', async (from, to) => {
    const runId = `20261206T000000-${from.slice(0, 3)}${to.slice(0, 3)}`;
    await registry.put(record(runId, from));
    await redis.set(`${prefix}:layertap:run:${runId}:progress`, 'x');
    await specs.heartbeat(runId, 60_000, 'planning');
    const claimed = await claimSnapshot(redis, prefix, `snap-${runId}`, runId, registry);
    expect(claimed).toBeNull();
    const moved = await lifecycle.move(runId, to, { rows: 3 });
    const now = (await registry.get(runId))!;
    if (from === to) {
      expect(moved?.moved).toBe(true);
      expect(now.rows).toBe(0);
    } else if (canMove(from, to)) {
      expect(moved?.moved).toBe(true);
      expect(now.status).toBe(to);
      expect(now.rows).toBe(3);
    } else {
      expect(moved?.moved).toBe(false);
      expect(now.status).toBe(from);
      expect(now.rows).toBe(0);
    }
    const ended = FINAL_STATUSES.includes(now.status);
    if (ended && from !== to && canMove(from, to)) {
      expect(now.finishedAt).toBeTypeOf('number');
      const ttl = await redis.ttl(`${prefix}:layertap:run:${runId}`);
      expect(ttl).toBeGreaterThan(ENDED_RECORD_TTL_S - 60);
      expect(await endedRunLeftovers(redis, prefix, runId)).toEqual([]);
    }
    if (!ended) {
      // a run still going keeps its record for good and its claim unless cancelling
      expect(await redis.ttl(`${prefix}:layertap:run:${runId}`)).toBe(-1);
      expect(await redis.get(`${prefix}:layertap:active:snap-${runId}`)).toBe(now.status === 'cancelling' && from !== 'cancelling' ? null : runId);
    }
  });

  it('lands every one of many racing writers, each exactly once', async () => {
    const runId = '20261206T000000-racers';
    await registry.put(record(runId, 'running'));
    const clients = Array.from({ length: 4 }, () => new Redis(REDIS_URL));
    try {
      const regs = clients.map((c) => new RunRegistry(c, prefix));
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          regs[i % regs.length]!.update(runId, { failedShards: [] }).then(() =>
            regs[i % regs.length]!.mutate(runId, (cur) => ({ ...cur, rows: cur.rows + 1 })),
          ),
        ),
      );
      expect((await registry.get(runId))?.rows).toBe(40);
      // a cancel racing the finalizer: whichever lands first, the run ends as its manifest says
      const both = await Promise.all([
        new RunLifecycle(clients[0]!, prefix, regs[0]!, specs).move(runId, 'committed'),
        new RunLifecycle(clients[1]!, prefix, regs[1]!, specs).move(runId, 'cancelling'),
      ]);
      expect((await registry.get(runId))?.status).toBe('committed');
      expect(both[0]?.moved).toBe(true);
    } finally {
      for (const c of clients) c.disconnect();
    }
  });
});

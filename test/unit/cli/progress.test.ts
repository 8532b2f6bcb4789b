import { describe, expect, it } from 'vitest';
import { formatEta, ProgressDisplay, type ProgressStream } from '../../../src/cli/progress.js';
import type { RunSummary } from '../../../src/queue/types.js';

/** A stream that keeps what is written; `isTTY` chooses the bar or the lines. */
function capture(isTTY: boolean): ProgressStream & { text: () => string } {
  const chunks: string[] = [];
  return {
    isTTY,
    write: (chunk: string | Uint8Array) => {
      chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
      return true;
    },
    text: () => chunks.join(''),
  };
}

function summary(status: RunSummary['status'], rows: number, shardsDone: number, totalRows = 1000, shards = 10): RunSummary {
  return {
    runId: 'r1',
    name: 'demo',
    status,
    rows,
    errorRows: 0,
    totalRows,
    shards: { total: shards, done: shardsDone, failed: 0, cancelled: 0 },
    output: { uri: '/out', manifest: null, files: [], errorFiles: [] },
    fingerprint: 'f',
    backend: null,
    seconds: 0,
    rowsPerSecond: null,
    failedShards: [],
  };
}

describe('run progress', () => {
  it('says planning until the plan is known, then counts the shards and the time left from the rows done since', async () => {
    let now = 0;
    const stream = capture(false);
    const p = await ProgressDisplay.open(true, { stream, now: () => now });
    // a run joined while its twin still plans: nothing to count yet
    now = 500;
    p.update(summary('planning', 0, 0, 0, 0));
    now = 1000;
    p.update(summary('queued', 0, 0));
    now = 7000;
    p.update(summary('running', 300, 3));
    now = 9000;
    p.update(summary('running', 400, 4));
    now = 21_000;
    p.update(summary('committed', 1000, 10));
    p.stop();
    expect(stream.text()).toBe(
      [
        'planning: checking the job, the model and the sink, then listing the source into shards',
        'progress: 0/1000 rows (0 errors), shards 0/10, 0.0 rows/s, eta estimating, queued',
        // 300 rows in the 6 s since the plan was known: 50 rows/s, 700 rows to go
        'progress: 300/1000 rows (0 errors), shards 3/10, 50.0 rows/s, eta 14s, running',
        'progress: 1000/1000 rows (0 errors), shards 10/10, 50.0 rows/s, eta 0s, committed',
        '',
      ].join('\n'),
    );
  });

  it('on a terminal: no bar while planning, then shards of the plan and a real ETA, never 0/0', async () => {
    let now = 0;
    const stream = capture(true);
    const p = await ProgressDisplay.open(true, { stream, now: () => now });
    p.update(summary('planning', 0, 0, 0, 0));
    expect(stream.text()).toBe('planning: checking the job, the model and the sink, then listing the source into shards\n');
    now = 1000;
    p.update(summary('queued', 0, 0));
    expect(stream.text()).toContain('0/1000 rows | 0 errors | shards 0/10 | 0 rows/s | eta estimating');
    now = 7000;
    p.update(summary('running', 300, 3));
    p.stop();
    expect(stream.text()).toContain('300/1000 rows | 0 errors | shards 3/10 | 50.0 rows/s | eta 14s');
    expect(stream.text()).not.toContain('0/0');
  });

  it('writes nothing when off', async () => {
    const stream = capture(false);
    const p = await ProgressDisplay.open(false, { stream });
    p.update(summary('running', 1, 0));
    p.stop();
    expect(stream.text()).toBe('');
  });

  it('formats the time left', () => {
    expect([0, 14.4, 59.6, 185, 3599, 7620].map(formatEta)).toEqual(['0s', '14s', '1m00s', '3m05s', '59m59s', '2h07m']);
  });
});

import { describe, expect, it } from 'vitest';
import { callbackLogger, repeatLimitedLogger } from '../../../src/types/logger.js';

describe('repeatLimitedLogger', () => {
  it('writes a warning or error once per window, then says how many were left out; info passes', () => {
    const out: string[] = [];
    let t = 0;
    const log = repeatLimitedLogger(
      callbackLogger((msg, level) => out.push(`${level} ${msg}`)),
      { windowMs: 5000, now: () => t },
    );
    const child = log.child({ runId: 'r' });
    for (let i = 0; i < 100; i++) child.error({}, 'OOM command not allowed');
    log.warn({}, 'other');
    log.info({}, 'progress');
    log.info({}, 'progress');
    t = 5000;
    log.error({}, 'OOM command not allowed');
    log.error({}, 'OOM command not allowed');
    expect(out).toEqual([
      'error OOM command not allowed',
      'warn other',
      'info progress',
      'info progress',
      'error OOM command not allowed (repeated 99 times in the last 5 s)',
    ]);
  });
});

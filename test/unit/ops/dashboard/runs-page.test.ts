import { describe, expect, it } from 'vitest';
import { renderRunsPage, type RunView } from '../../../../src/ops/dashboard/index.js';

const good: RunView = {
  runId: '20261127T061502-3fa9c1',
  name: 'products',
  status: 'committed',
  trigger: 'manual',
  rows: 1000,
  totalRows: 1024,
  errorRows: 24,
  shards: { total: 4, done: 3, failed: 1 },
  rowsPerSecond: 250,
  seconds: 4.096,
  createdAt: Date.UTC(2026, 10, 27, 6, 15, 2),
  finishedAt: Date.UTC(2026, 10, 27, 6, 15, 6),
  backend: 'onnx',
  fingerprint: '0123456789abcdef',
  output: { uri: '/out/products/0123456789abcdef/20261127T061502-3fa9c1', manifest: null },
  error: null,
};

/** Markup that would run if any field reached the page unescaped. */
const XSS = '<script>alert(1)</script><img src=x onerror=alert(2)>';

// Values the type promises but JSON from Redis or a sink does not: every field must come out as
// text, and a value that cannot be shown must not take the page down.
function hostile(): RunView {
  const v = structuredClone(good) as unknown as Record<string, unknown>;
  for (const k of ['runId', 'name', 'status', 'trigger', 'rows', 'totalRows', 'errorRows', 'rowsPerSecond', 'seconds', 'backend', 'fingerprint', 'error'])
    v[k] = XSS;
  v.shards = { total: XSS, done: XSS, failed: XSS };
  v.output = { uri: XSS, manifest: XSS };
  v.createdAt = 'not a date';
  return v as unknown as RunView;
}

describe('renderRunsPage', () => {
  it('shows a run with its figures', () => {
    const html = renderRunsPage([good], { now: Date.UTC(2026, 10, 27, 7) });
    expect(html).toContain('<td class="num rows">1000</td>');
    expect(html).toContain('<td class="num">1024</td>');
    expect(html).toContain('<td class="num rate">250</td>');
    expect(html).toContain('<td class="num errors">24</td>');
    expect(html).toContain('<td class="num">3/4 (1 failed)</td>');
    expect(html).toContain('<td>2026-11-27 06:15:02Z</td>');
    expect(html).toContain('<td class="num">4.1 s</td>');
  });

  it('shows a cancelled run and one still planning, each with its own style, and counts them', () => {
    const cancelled: RunView = { ...good, runId: '20261127T061502-cccccc', status: 'cancelled', error: 'cancelled: 3 of 4 shard(s) committed' };
    const planning: RunView = { ...good, runId: '20261127T061502-pppppp', status: 'planning', rows: 0, totalRows: 0, shards: { total: 0, done: 0, failed: 0 } };
    const html = renderRunsPage([cancelled, planning], { now: Date.UTC(2026, 10, 27, 7) });
    expect(html).toContain('<tr data-run-id="20261127T061502-cccccc" data-status="cancelled">');
    expect(html).toContain('<span class="status cancelled">cancelled</span><div class="err">cancelled: 3 of 4 shard(s) committed</div>');
    expect(html).toContain('<span class="status planning">planning</span>');
    expect(html).toMatch(/\.cancelled\{[^}]+\}/);
    expect(html).toContain('<span>1 cancelled</span><span>1 planning</span>');
  });

  it('escapes every field, numeric ones included, and survives a bad createdAt', () => {
    let html = '';
    expect(() => (html = renderRunsPage([hostile(), good], { name: XSS, prefix: XSS, queuesPath: XSS }))).not.toThrow();
    expect(html).not.toMatch(/<script|<img/i);
    const escaped = '&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;';
    expect(html).toContain(`<td class="num rows">${escaped}</td>`);
    expect(html).toContain(`<td class="num errors">${escaped}</td>`);
    expect(html).toContain(`<td class="num">${escaped}/${escaped} (${escaped} failed)</td>`);
    // what cannot be shown as a time is shown as a dash
    expect(html).toContain('<td>-</td>');
    // the good run next to it is intact
    expect(html).toContain('<td class="num rows">1000</td>');
  });
});

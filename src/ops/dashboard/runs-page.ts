import type { RunView } from './runs.js';

/** Any value as text made safe for HTML element content and attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Options for {@link renderRunsPage}. */
export interface RunsPageOptions {
  /** where Bull Board is mounted. @defaultValue '/queues' */
  queuesPath?: string;
  /** seconds between reloads; 0 = none. @defaultValue 5 */
  refreshSeconds?: number;
  /** dataset filter in effect, shown in the heading */
  name?: string;
  /** the deployment's key prefix, shown in the heading */
  prefix?: string;
  /** names (host:pid) of the `layertap worker` processes connected now; absent: not shown */
  workers?: readonly string[];
  now?: number;
}

// The formatters below take what the type promises but show anything else as plain text: the
// values come from JSON in Redis, and a page must never fail (or run script) over one of them.

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function rate(v: number | null): string {
  if (v === null) return '-';
  if (!isNumber(v)) return String(v);
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function duration(seconds: number): string {
  if (!isNumber(seconds)) return String(seconds);
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** UTC time of a timestamp to the second, or '-' when it is none. */
function time(ms: number): string {
  const d = new Date(isNumber(ms) ? ms : NaN);
  return Number.isNaN(d.getTime())
    ? '-'
    : d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header{display:flex;gap:1.5em;align-items:baseline;padding:.8em 1.2em;background:#24292f;color:#fff}
header h1{font-size:1.2em;margin:0} header a{color:#9ecbff} header .meta{color:#c9d1d9;font-size:.9em;margin-left:auto}
main{padding:1em 1.2em} .counts span{margin-right:1.2em}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d0d7de}
th,td{padding:.35em .6em;border-bottom:1px solid #d8dee4;text-align:left;white-space:nowrap;vertical-align:top}
th{background:#eaeef2;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.out{white-space:normal;word-break:break-all;max-width:32em;font-family:ui-monospace,monospace;font-size:.85em}
.status{display:inline-block;padding:0 .5em;border-radius:1em;font-size:.85em;font-weight:600}
.committed{background:#dafbe1;color:#116329}.running{background:#ddf4ff;color:#0550ae}.queued{background:#eaeef2;color:#57606a}
.failed{background:#ffebe9;color:#a40e26}.partial{background:#fff8c5;color:#7d4e00}
.cancelled{background:#f6f8fa;color:#6e7781;text-decoration:line-through}.planning{background:#fbefff;color:#8250df}
.err{color:#a40e26;font-size:.85em;white-space:normal}
.empty{padding:2em;text-align:center;color:#57606a} .workers{color:#57606a}`;

/** The line that says which workers are connected; none is normal between runs, not an alarm. */
function workersLine(workers: readonly string[]): string {
  if (workers.length === 0) {
    return '<p class="workers" data-workers="0">Workers: none connected now. That is normal when no run is queued; runs queued with <code>layertap enqueue</code> or a schedule wait for a <code>layertap worker</code> (a <code>layertap run</code> works its own run and is not counted).</p>';
  }
  return `<p class="workers" data-workers="${workers.length}">Workers: ${workers.length} connected (${workers.map((w) => `<code>${escapeHtml(w)}</code>`).join(', ')}).</p>`;
}

/** The page shown in place of the runs while Redis does not answer; it reloads until Redis does. */
export function renderUnavailablePage(reason: string, opts: RunsPageOptions = {}): string {
  const queues = opts.queuesPath ?? '/queues';
  const refresh = opts.refreshSeconds ?? 5;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>layertap runs: Redis does not answer</title>
${refresh > 0 ? `<meta http-equiv="refresh" content="${escapeHtml(refresh)}">` : ''}
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head>
<body><header><h1>layertap runs</h1><a href="${escapeHtml(queues)}">Queues (Bull Board)</a>
<span class="meta">${opts.prefix ? `prefix ${escapeHtml(opts.prefix)} · ` : ''}${escapeHtml(new Date(opts.now ?? Date.now()).toISOString())}</span></header>
<main><div class="empty unavailable"><p class="err">${escapeHtml(reason)}.</p><p>The runs and the queues live in Redis; ${refresh > 0 ? `this page tries again every ${escapeHtml(refresh)} seconds` : 'reload this page'} and shows them once Redis answers. Workers keep their shards meanwhile and go on when it is back.</p></div></main></body></html>`;
}

/** The runs page: one row per run with status, rows, rows/s, errors and output location. */
export function renderRunsPage(runs: RunView[], opts: RunsPageOptions = {}): string {
  const queues = opts.queuesPath ?? '/queues';
  const refresh = opts.refreshSeconds ?? 5;
  const counts = new Map<string, number>();
  for (const r of runs) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  const rows = runs
    .map((r) => {
      const shards = r.shards ?? { total: '-', done: '-', failed: 0 };
      return `<tr data-run-id="${escapeHtml(r.runId)}" data-status="${escapeHtml(r.status)}">
<td class="run"><a href="/runs/${escapeHtml(encodeURIComponent(r.runId))}"><code>${escapeHtml(r.runId)}</code></a></td>
<td>${escapeHtml(r.name)}</td>
<td><span class="status ${escapeHtml(r.status)}">${escapeHtml(r.status)}</span>${r.error ? `<div class="err">${escapeHtml(r.error)}</div>` : ''}</td>
<td class="num rows">${escapeHtml(r.rows)}</td>
<td class="num">${escapeHtml(r.totalRows)}</td>
<td class="num rate">${escapeHtml(rate(r.rowsPerSecond))}</td>
<td class="num errors">${escapeHtml(r.errorRows)}</td>
<td class="num">${escapeHtml(shards.done)}/${escapeHtml(shards.total)}${shards.failed ? ` (${escapeHtml(shards.failed)} failed)` : ''}</td>
<td>${escapeHtml(time(r.createdAt))}</td>
<td class="num">${escapeHtml(duration(r.seconds))}</td>
<td>${escapeHtml(r.backend ?? '-')}</td>
<td>${escapeHtml(r.trigger)}</td>
<td class="out">${escapeHtml(r.output?.uri ?? '-')}</td>
</tr>`;
    })
    .join('\n');
  const title = `layertap runs${opts.name ? `: ${opts.name}` : ''}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
${refresh > 0 ? `<meta http-equiv="refresh" content="${escapeHtml(refresh)}">` : ''}
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head>
<body><header><h1>${escapeHtml(title)}</h1><a href="${escapeHtml(queues)}">Queues (Bull Board)</a><a href="/api/runs">JSON</a>
<span class="meta">${opts.prefix ? `prefix ${escapeHtml(opts.prefix)} · ` : ''}${escapeHtml(new Date(opts.now ?? Date.now()).toISOString())}</span></header>
<main><p class="counts">${[...counts].map(([s, n]) => `<span>${escapeHtml(n)} ${escapeHtml(s)}</span>`).join('') || '<span>no runs</span>'}</p>
${opts.workers ? workersLine(opts.workers) : ''}
${
  runs.length === 0
    ? '<div class="empty">No runs in the registry yet. <code>layertap enqueue job.yaml</code> adds one.</div>'
    : `<table id="runs"><thead><tr><th>run</th><th>name</th><th>status</th><th>rows</th><th>of</th><th>rows/s</th><th>errors</th><th>shards</th><th>started (UTC)</th><th>time</th><th>backend</th><th>trigger</th><th>output</th></tr></thead>
<tbody>
${rows}
</tbody></table>`
}
</main></body></html>`;
}

import { MAP_METHODS } from '../../pipeline/search/map.js';
import type { RunDetail } from './run-detail.js';
import { escapeHtml } from './runs-page.js';

/** Where the run page's script is served. */
export const RUN_PAGE_SCRIPT_PATH = '/assets/run-page.js';

/** What the run page may load: its own script, and data and images from this server. */
export const RUN_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header{display:flex;gap:1.5em;align-items:baseline;padding:.8em 1.2em;background:#24292f;color:#fff}
header h1{font-size:1.2em;margin:0} header a{color:#9ecbff}
main{padding:1em 1.2em;display:grid;grid-template-columns:minmax(0,1fr) 22em;gap:1em}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.6em .9em;margin-bottom:1em}
h2{font-size:1em;margin:.2em 0 .6em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0} dt{color:#57606a} dd{margin:0;word-break:break-all}
table{border-collapse:collapse;width:100%} th,td{padding:.25em .5em;border-bottom:1px solid #d8dee4;text-align:left;vertical-align:top}
th{background:#eaeef2;font-weight:600} code{font-family:ui-monospace,monospace;font-size:.9em}
.err{color:#a40e26} .muted{color:#57606a}
#controls{display:flex;gap:1em;align-items:center;margin-bottom:.5em;flex-wrap:wrap}
#map{border:1px solid #d0d7de;background:#fff;cursor:crosshair;max-width:100%}
#tooltip{position:fixed;pointer-events:none;background:#24292f;color:#fff;padding:.4em .6em;border-radius:4px;font-size:.85em;max-width:24em;display:none;z-index:2}
#tooltip img{display:block;max-width:96px;max-height:96px;margin-bottom:.3em}
#legend span{display:inline-block;margin-right:.8em;font-size:.85em} #legend i{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.3em;vertical-align:middle}
#neighbours ol{padding-left:1.4em;margin:.3em 0} #neighbours li{margin:.2em 0;word-break:break-all}
#neighbours .grid{display:grid;grid-template-columns:repeat(3,1fr);gap:.4em;list-style:none;padding:0}
#neighbours .grid li{text-align:center;font-size:.8em} #neighbours .grid img{width:100%;aspect-ratio:1;object-fit:cover;border-radius:4px}
.score{color:#57606a;font-variant-numeric:tabular-nums}`;

function seconds(s: number): string {
  if (!Number.isFinite(s)) return '-';
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function when(ms: number | undefined): string {
  return ms === undefined
    ? '-'
    : new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}

/**
 * The page of one run: its manifest in words (taps, rows, errors with their messages, truncated
 * rows, time, backend) and, for a committed run, a 2-D map of a tap that the page's script draws
 * from `/api/runs/<runId>/map`; hovering a point shows its id and carried cells, a click lists its
 * nearest rows.
 */
export function renderRunPage(d: RunDetail): string {
  const r = d.record;
  const m = d.run?.manifest;
  const rows: Array<[string, string]> = [
    [
      'status',
      `<span class="status ${escapeHtml(r.status)}">${escapeHtml(r.status)}</span>${r.error ? ` <span class="err">${escapeHtml(r.error)}</span>` : ''}`,
    ],
    ['dataset', escapeHtml(r.name)],
    ['rows', `${escapeHtml(r.rows)} embedded of ${escapeHtml(r.totalRows)}`],
    ['error rows', escapeHtml(r.errorRows)],
  ];
  if (m?.truncatedRows !== undefined) rows.push(['truncated rows', `${escapeHtml(m.truncatedRows)} (cut at the model's maxLength)`]);
  rows.push(
    ['time', m ? escapeHtml(seconds(m.seconds)) : r.finishedAt ? escapeHtml(seconds((r.finishedAt - r.createdAt) / 1000)) : '-'],
    ['started', escapeHtml(when(r.createdAt))],
    ['backend', escapeHtml(m?.model.runtime ?? r.backend ?? '-')],
    ['model', m ? `<code>${escapeHtml(m.model.uri)}</code>` : '-'],
    ['source', m ? `<code>${escapeHtml(m.source.uri)}</code> (${escapeHtml(m.source.type)})` : '-'],
    ['fingerprint', `<code>${escapeHtml(r.fingerprint)}</code>`],
    ['output', `<code>${escapeHtml(r.outputUri)}</code>`],
  );
  const taps = (m?.taps ?? [])
    .map(
      (t) =>
        `<tr data-tap="${escapeHtml(t.as)}"><td><code>${escapeHtml(t.as)}</code></td><td><code>${escapeHtml(t.layer)}</code> (${escapeHtml(t.at)})</td><td>${escapeHtml(JSON.stringify(t.shape ?? null))}</td><td>${escapeHtml(t.reduce)}</td><td>${escapeHtml(t.normalize)}</td><td>${escapeHtml(t.dtype)}</td></tr>`,
    )
    .join('\n');
  const errors = d.errors.length
    ? `<table id="errors"><thead><tr><th>id</th><th>stage</th><th>message</th></tr></thead><tbody>${d.errors
        .map((e) => `<tr><td><code>${escapeHtml(e.id ?? '-')}</code></td><td>${escapeHtml(e.stage)}</td><td>${escapeHtml(e.message)}</td></tr>`)
        .join('\n')}</tbody></table>${r.errorRows > d.errors.length ? `<p class="muted">the first ${d.errors.length} of ${escapeHtml(r.errorRows)}</p>` : ''}`
    : '<p class="muted" id="errors">No error rows.</p>';
  const columns = d.run?.columns ?? [];
  const map = d.run
    ? `<section id="map-section"><h2>Map</h2>
<div id="controls">
<label>tap <select id="tap">${columns.map((c) => `<option>${escapeHtml(c)}</option>`).join('')}</select></label>
<label>method <select id="method">${MAP_METHODS.map((c) => `<option>${escapeHtml(c)}</option>`).join('')}</select></label>
<label>colour <select id="colour"><option value="">folder</option></select></label>
<span id="map-status" class="muted">loading…</span>
</div>
<canvas id="map" width="900" height="600"></canvas>
<div id="legend"></div>
</section>`
    : `<section><h2>Map</h2><p class="muted" id="no-map">No map: ${escapeHtml(d.unavailable ?? 'the run has no committed output')}.</p></section>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>layertap run ${escapeHtml(r.runId)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head>
<body data-run-id="${escapeHtml(r.runId)}" data-images="${d.images ? '1' : ''}">
<header><h1>run <code>${escapeHtml(r.runId)}</code></h1><a href="/runs">Runs</a><a href="/api/runs/${encodeURIComponent(r.runId)}/map">map JSON</a></header>
<main><div>
<section id="summary"><h2>Run</h2><dl>${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd data-field="${escapeHtml(k)}">${v}</dd>`).join('')}</dl></section>
<section><h2>Taps</h2>${taps ? `<table id="taps"><thead><tr><th>column</th><th>layer</th><th>shape</th><th>reduce</th><th>normalize</th><th>dtype</th></tr></thead><tbody>${taps}</tbody></table>` : '<p class="muted">-</p>'}</section>
${map}
<section><h2>Errors</h2>${errors}</section>
</div>
<aside><section id="neighbours"><h2>Neighbours</h2><p class="muted">Click a point of the map to list its nearest rows.</p></section></aside>
</main><div id="tooltip"></div>
${d.run ? `<script src="${RUN_PAGE_SCRIPT_PATH}"></script>` : ''}
</body></html>`;
}

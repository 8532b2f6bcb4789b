/**
 * The run page's script, served at `/assets/run-page.js` (the page's policy runs no inline
 * script). It draws the map from `/api/runs/<runId>/map`, shows a point's id and carried cells on
 * hover, and lists a clicked point's nearest rows from `/api/runs/<runId>/neighbours`.
 * `window.layertapMap` lets scripts (and tests) find a point on the canvas: `at(id)` gives its
 * position in CSS pixels relative to the canvas.
 */
export const RUN_PAGE_SCRIPT = String.raw`(function () {
  'use strict';
  var body = document.body;
  var runId = body.getAttribute('data-run-id');
  var images = body.getAttribute('data-images') === '1';
  var canvas = document.getElementById('map');
  var ctx = canvas.getContext('2d');
  var tip = document.getElementById('tooltip');
  var statusEl = document.getElementById('map-status');
  var tapSel = document.getElementById('tap');
  var methodSel = document.getElementById('method');
  var colourSel = document.getElementById('colour');
  var legend = document.getElementById('legend');
  var side = document.getElementById('neighbours');
  var PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
  var OTHER = '#c9d1d9';
  var state = { points: [], sx: [], sy: [], colours: [], selected: null, near: {} };
  var PAD = 16;

  function api(path) { return '/api/runs/' + encodeURIComponent(runId) + path; }
  function thumb(id) { return api('/thumb?id=' + encodeURIComponent(id)); }
  function folder(id) { var i = id.lastIndexOf('/'); return i < 0 ? '(top)' : id.slice(0, i); }
  function text(v) { return v === null || v === undefined ? '' : String(v); }
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    (kids || []).forEach(function (c) { e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function carriedOf(p) {
    var out = {};
    for (var k in p) if (k !== 'id' && k !== 'x' && k !== 'y') out[k] = p[k];
    return out;
  }

  function layout() {
    var pts = state.points;
    var minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    pts.forEach(function (p) { minX = Math.min(minX, p.x); maxX = Math.max(maxX, p.x); minY = Math.min(minY, p.y); maxY = Math.max(maxY, p.y); });
    var w = canvas.width - 2 * PAD, h = canvas.height - 2 * PAD;
    var s = Math.min(w / ((maxX - minX) || 1), h / ((maxY - minY) || 1));
    var ox = PAD + (w - s * (maxX - minX)) / 2, oy = PAD + (h - s * (maxY - minY)) / 2;
    state.sx = pts.map(function (p) { return ox + (p.x - minX) * s; });
    state.sy = pts.map(function (p) { return canvas.height - (oy + (p.y - minY) * s); });
  }

  function colour() {
    var key = colourSel.value;
    var value = function (p) { return key ? text(p[key]) : folder(p.id); };
    var counts = {};
    state.points.forEach(function (p) { var v = value(p); counts[v] = (counts[v] || 0) + 1; });
    var top = Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a] || (a < b ? -1 : 1); }).slice(0, PALETTE.length);
    var index = {};
    top.forEach(function (v, i) { index[v] = i; });
    state.colours = state.points.map(function (p) { var i = index[value(p)]; return i === undefined ? OTHER : PALETTE[i]; });
    legend.textContent = '';
    top.forEach(function (v, i) {
      legend.appendChild(el('span', {}, [el('i', { style: 'background:' + PALETTE[i] }), (v || '(empty)') + ' (' + counts[v] + ')']));
    });
    if (Object.keys(counts).length > top.length) legend.appendChild(el('span', {}, [el('i', { style: 'background:' + OTHER }), 'other']));
  }

  function draw() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    var r = state.points.length > 20000 ? 1.5 : state.points.length > 2000 ? 2.5 : 4;
    for (var i = 0; i < state.points.length; i++) {
      ctx.fillStyle = state.colours[i];
      ctx.beginPath();
      ctx.arc(state.sx[i], state.sy[i], r, 0, 2 * Math.PI);
      ctx.fill();
    }
    if (state.selected !== null) {
      ctx.lineWidth = 2;
      ctx.strokeStyle = '#24292f';
      Object.keys(state.near).forEach(function (k) {
        var j = state.near[k];
        ctx.beginPath();
        ctx.arc(state.sx[j], state.sy[j], r + 3, 0, 2 * Math.PI);
        ctx.stroke();
      });
      ctx.strokeStyle = '#d62728';
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.arc(state.sx[state.selected], state.sy[state.selected], r + 5, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }

  /** the point under a mouse event (within 8 CSS pixels), or null */
  function pick(ev) {
    var rect = canvas.getBoundingClientRect();
    var fx = canvas.width / rect.width, fy = canvas.height / rect.height;
    var x = (ev.clientX - rect.left) * fx, y = (ev.clientY - rect.top) * fy;
    var best = null, bestD = 64 * fx * fy;
    for (var i = 0; i < state.points.length; i++) {
      var d = (state.sx[i] - x) * (state.sx[i] - x) + (state.sy[i] - y) * (state.sy[i] - y);
      if (d < bestD) { best = i; bestD = d; }
    }
    return best;
  }

  function showTip(i, ev) {
    if (i === null) { tip.style.display = 'none'; return; }
    var p = state.points[i];
    tip.textContent = '';
    if (images) tip.appendChild(el('img', { src: thumb(p.id), alt: '' }));
    tip.appendChild(el('div', {}, [el('code', {}, [p.id])]));
    var c = carriedOf(p);
    Object.keys(c).forEach(function (k) { var v = text(c[k]); tip.appendChild(el('div', {}, [k + ': ' + (v.length > 200 ? v.slice(0, 199) + '…' : v)])); });
    tip.style.left = ev.clientX + 14 + 'px';
    tip.style.top = ev.clientY + 14 + 'px';
    tip.style.display = 'block';
  }

  function showNeighbours(i) {
    var p = state.points[i];
    state.selected = i;
    state.near = {};
    draw();
    side.textContent = '';
    side.appendChild(el('h2', {}, ['Neighbours']));
    side.appendChild(el('p', { class: 'muted', id: 'neighbours-of' }, ['nearest to ', el('code', {}, [p.id]), ' (loading…)']));
    fetch(api('/neighbours?k=12&tap=' + encodeURIComponent(tapSel.value) + '&id=' + encodeURIComponent(p.id)))
      .then(function (r) { return r.json(); })
      .then(function (res) {
        if (res.error) throw new Error(res.error);
        var byId = {};
        state.points.forEach(function (q, j) { byId[q.id] = j; });
        var list = el('ol', { class: images ? 'grid' : '', id: 'neighbour-list' });
        res.neighbours.forEach(function (n) {
          if (byId[n.id] !== undefined) state.near[n.id] = byId[n.id];
          var kids = [];
          if (images) kids.push(el('img', { src: thumb(n.id), alt: n.id }));
          kids.push(el('code', { class: 'nid' }, [n.id]), ' ', el('span', { class: 'score' }, [n.score.toFixed(4)]));
          var c = carriedOf(n);
          delete c.score;
          Object.keys(c).forEach(function (k) { var v = text(c[k]); if (v) kids.push(el('div', { class: 'muted' }, [v.length > 120 ? v.slice(0, 119) + '…' : v])); });
          list.appendChild(el('li', { class: 'neighbour', 'data-id': n.id }, kids));
        });
        var head = document.getElementById('neighbours-of');
        head.textContent = '';
        head.appendChild(document.createTextNode(res.neighbours.length + ' nearest to '));
        head.appendChild(el('code', {}, [p.id]));
        head.appendChild(document.createTextNode(' in ' + res.tap + ' (cosine, whole run)'));
        if (images) side.appendChild(el('img', { src: thumb(p.id), alt: p.id, style: 'max-width:96px;display:block;margin:.3em 0' }));
        side.appendChild(list);
        draw();
      })
      .catch(function (e) { side.appendChild(el('p', { class: 'err' }, [String(e.message || e)])); });
  }

  function load() {
    statusEl.textContent = 'loading…';
    var q = '?tap=' + encodeURIComponent(tapSel.value) + '&method=' + encodeURIComponent(methodSel.value);
    fetch(api('/map' + q))
      .then(function (r) { return r.json(); })
      .then(function (res) {
        if (res.error) throw new Error(res.error);
        state.points = res.points;
        state.selected = null;
        state.near = {};
        var keys = {};
        res.points.forEach(function (p) { for (var k in carriedOf(p)) keys[k] = true; });
        var chosen = colourSel.value;
        colourSel.textContent = '';
        colourSel.appendChild(el('option', { value: '' }, ['folder']));
        Object.keys(keys).forEach(function (k) { colourSel.appendChild(el('option', { value: k }, [k])); });
        colourSel.value = keys[chosen] ? chosen : '';
        layout();
        colour();
        draw();
        statusEl.textContent = res.points.length + ' points of ' + res.rows + ' rows, ' + res.method + ' of ' + res.tap;
        canvas.setAttribute('data-points', String(res.points.length));
      })
      .catch(function (e) { statusEl.textContent = String(e.message || e); statusEl.className = 'err'; });
  }

  canvas.addEventListener('mousemove', function (ev) { showTip(pick(ev), ev); });
  canvas.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  canvas.addEventListener('click', function (ev) { var i = pick(ev); if (i !== null) showNeighbours(i); });
  tapSel.addEventListener('change', load);
  methodSel.addEventListener('change', load);
  colourSel.addEventListener('change', function () { colour(); draw(); });
  window.layertapMap = {
    ids: function () { return state.points.map(function (p) { return p.id; }); },
    at: function (id) {
      for (var i = 0; i < state.points.length; i++) {
        if (state.points[i].id !== id) continue;
        var rect = canvas.getBoundingClientRect();
        return { x: state.sx[i] * rect.width / canvas.width, y: state.sy[i] * rect.height / canvas.height };
      }
      return null;
    },
  };
  load();
})();
`;

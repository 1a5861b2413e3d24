/** The live view: one self-contained page (inline CSS and script, no build step, no library). */
export const LIVE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hostpulse live</title>
<style>
:root { --bg:#f5f6f8; --card:#fff; --text:#1c2330; --muted:#6b7585; --line:#e3e6eb; --ok:#1e9e55; --warn:#d98a00; --bad:#d3382c; --off:#8a93a3; --accent:#3366cc; }
@media (prefers-color-scheme: dark) { :root { --bg:#111418; --card:#1b2027; --text:#e6e9ee; --muted:#97a1b0; --line:#2b323c; --accent:#7aa2f7; } }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; flex-wrap:wrap; gap:.5rem 1rem; align-items:baseline; padding:.9rem 1rem .4rem; }
h1 { font-size:1.15rem; margin:0; }
#summary, #conn { color:var(--muted); font-size:.9rem; }
#notice { margin:0 1rem; padding:.5rem .75rem; border-radius:.5rem; background:#fff4d6; color:#6b4e00; font-size:.9rem; }
#notice[hidden] { display:none; }
main { display:grid; grid-template-columns:repeat(auto-fill, minmax(17.5rem, 1fr)); gap:.8rem; padding:.8rem 1rem 1.5rem; }
.card { background:var(--card); border:1px solid var(--line); border-radius:.75rem; padding:.8rem .9rem; }
.card.offline { opacity:.62; }
.top { display:flex; align-items:center; gap:.5rem; }
.name { font-weight:600; font-size:1.05rem; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; flex:1; }
.pill { font-size:.75rem; padding:.1rem .5rem; border-radius:1rem; color:#fff; background:var(--off); }
.pill.online { background:var(--ok); } .pill.stale { background:var(--warn); } .pill.offline { background:var(--off); }
.seen { color:var(--muted); font-size:.8rem; margin:.1rem 0 .5rem; }
.row { display:grid; grid-template-columns:6.2rem 1fr 4.6rem; align-items:center; gap:.5rem; margin:.28rem 0; font-size:.88rem; }
.label { color:var(--muted); white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
.value { text-align:right; font-variant-numeric:tabular-nums; font-weight:600; }
.bar { height:.45rem; background:var(--line); border-radius:.3rem; overflow:hidden; }
.bar > i { display:block; height:100%; background:var(--ok); }
svg.spark { width:100%; height:1.6rem; display:block; }
svg.spark polyline { fill:none; stroke:var(--accent); stroke-width:1.5; vector-effect:non-scaling-stroke; }
.hot { color:var(--bad); } .warm { color:var(--warn); }
.empty { color:var(--muted); padding:2rem 1rem; }
</style>
</head>
<body>
<header><h1>hostpulse live</h1><span id="summary"></span><span id="conn">connecting…</span></header>
<p id="notice" hidden>History is not being stored: no InfluxDB is configured. This page shows the last hour, kept in memory.</p>
<main id="hosts"><p class="empty">Waiting for the first host…</p></main>
<script>
"use strict";
const hosts = new Map();
const units = {};
const fmtBytes = (b) => { const u = ['B','KiB','MiB','GiB','TiB']; let i = 0; while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; } return b.toFixed(b < 10 && i ? 1 : 0) + ' ' + u[i]; };
const fmtRate = (b) => fmtBytes(b) + '/s';
function fmt(name, v) {
  const unit = units[name] || '';
  if (unit === '°C') return v.toFixed(0) + ' °C';
  if (unit === '%') return v.toFixed(0) + ' %';
  if (unit === 'B') return fmtBytes(v);
  if (unit === 'B/s') return fmtRate(v);
  if (unit === 'W') return v.toFixed(0) + ' W';
  return String(Math.round(v * 100) / 100);
}
const ago = (ms) => { const s = Math.max(0, Math.round((Date.now() - ms) / 1000)); return s < 60 ? s + ' s ago' : s < 3600 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago'; };
const tempClass = (t) => t >= 85 ? 'hot' : t >= 70 ? 'warm' : '';
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&':'&amp;', '<':'&lt;', '>':'&gt;', '"':'&quot;', "'":'&#39;' }[c]));
function spark(points) {
  if (!points || points.length < 2) return '';
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const pts = points.map((p) => ((p[0] - x0) / ((x1 - x0) || 1) * 100).toFixed(1) + ',' + (28 - (p[1] - y0) / ((y1 - y0) || 1) * 26).toFixed(1)).join(' ');
  return '<svg class="spark" viewBox="0 0 100 30" preserveAspectRatio="none"><polyline points="' + pts + '"/></svg>';
}
function bar(pct) { const p = Math.max(0, Math.min(100, pct)); const c = p >= 90 ? 'var(--bad)' : p >= 80 ? 'var(--warn)' : 'var(--ok)'; return '<div class="bar"><i style="width:' + p.toFixed(0) + '%;background:' + c + '"></i></div>'; }
function row(label, mid, name, v, cls) { return '<div class="row"><span class="label">' + esc(label) + '</span>' + (mid || '<span></span>') + '<span class="value ' + (cls || '') + '" data-metric="' + esc(name) + '">' + fmt(name, v) + '</span></div>'; }
function status(h) {
  if (h.online === false) return 'offline';
  if (Date.now() - h.lastSeen > 180000) return 'stale';
  return 'online';
}
function card(h) {
  const v = h.values, rows = [];
  const val = (n) => v[n] && v[n][0];
  if (v.cpu_temp) rows.push(row('CPU temp', spark(h.history.cpu_temp), 'cpu_temp', val('cpu_temp'), tempClass(val('cpu_temp'))));
  if (v.cpu_usage) rows.push(row('CPU', spark(h.history.cpu_usage) || bar(val('cpu_usage')), 'cpu_usage', val('cpu_usage')));
  for (let n = 0; v['gpu' + n + '_temp'] || v['gpu' + n + '_usage']; n++) {
    if (v['gpu' + n + '_temp']) rows.push(row('GPU ' + n + ' temp', spark(h.history['gpu' + n + '_temp']), 'gpu' + n + '_temp', val('gpu' + n + '_temp'), tempClass(val('gpu' + n + '_temp'))));
    if (v['gpu' + n + '_usage']) rows.push(row('GPU ' + n, bar(val('gpu' + n + '_usage')), 'gpu' + n + '_usage', val('gpu' + n + '_usage')));
  }
  if (v.mem_usage) rows.push(row('Memory', bar(val('mem_usage')), 'mem_usage', val('mem_usage')));
  for (const name of Object.keys(v).filter((k) => /^disk_.+_usage$/.test(k)).sort()) rows.push(row('Disk ' + name.slice(5, -6), bar(v[name][0]), name, v[name][0]));
  if (v.battery_level) rows.push(row('Battery' + (val('battery_charging') ? ' ⚡' : ''), bar(val('battery_level')), 'battery_level', val('battery_level')));
  const st = status(h);
  return '<article class="card ' + st + '" data-host="' + esc(h.host) + '"><div class="top"><span class="name">' + esc(h.host) + '</span><span class="pill ' + st + '">' + st + '</span></div>'
    + '<div class="seen">last seen ' + (h.lastSeen ? ago(h.lastSeen) : 'never') + '</div>' + rows.join('') + '</article>';
}
function render() {
  const list = [...hosts.values()].sort((a, b) => (status(a) === 'offline') - (status(b) === 'offline') || ((b.values.cpu_temp || [0])[0] - (a.values.cpu_temp || [0])[0]) || a.host.localeCompare(b.host));
  document.getElementById('hosts').innerHTML = list.length ? list.map(card).join('') : '<p class="empty">Waiting for the first host…</p>';
  const on = list.filter((h) => status(h) === 'online').length;
  document.getElementById('summary').textContent = list.length + ' host' + (list.length === 1 ? '' : 's') + ', ' + on + ' online';
}
function merge(data) { Object.assign(units, data.units || {}); for (const h of data.hosts) hosts.set(h.host, h); render(); }
function connect() {
  const es = new EventSource('api/stream');
  es.addEventListener('hosts', (e) => { const d = JSON.parse(e.data); hosts.clear(); document.getElementById('notice').hidden = d.storing; merge(d); document.getElementById('conn').textContent = 'live'; });
  es.addEventListener('update', (e) => merge(JSON.parse(e.data)));
  es.onerror = () => { document.getElementById('conn').textContent = 'reconnecting…'; };
}
connect();
setInterval(render, 5000);
</script>
</body>
</html>
`;

// Renders a bp-console headless report (window.BP_REPORT): `run` (one strategy) or `compare`
// (every strategy on one scenario, side by side). Inline in a self-contained HTML file.
'use strict';
(function () {
  const R = window.BP_REPORT;
  const root = document.getElementById('report');
  const COLORS = { block: '#1f6feb', drop_newest: '#c62828', drop_oldest: '#f0a30a', reject: '#8e44ad',
    unbounded: '#1f2328', signal: '#2e7d32', throttle: '#00838f' };
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
  const num = (v, d = 0) => (v === null || v === undefined ? '–' : Number(v).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
  const pct = (v) => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(v > 0 && v < 0.01 ? 1 : 0)}%`);
  const mib = (b) => (b === null || b === undefined ? '–' : (b / (1 << 20)).toFixed(b < (1 << 20) ? 2 : 1));
  const s0 = R.settings || (R.runs && R.runs[0] && R.runs[0].settings) || {};
  const scenario = `producer ${num(s0.producer_rate, s0.producer_rate < 10 ? 1 : 0)}/s × ${s0.producers}, consumer ` +
    `${num(s0.consumer_rate, s0.consumer_rate < 10 ? 1 : 0)}/s × ${s0.consumers}` +
    `${s0.consumer_delay_s ? ` (after ${s0.consumer_delay_s} s)` : ''}, capacity ${s0.capacity}, payload ${num(s0.payload_bytes)} B/item`;

  // log: a log10 y axis (values below `log` are drawn at `log`), for metrics where one
  // strategy is orders of magnitude above the others (unbounded's depth and latency).
  function chart(el, title, unit, xs, lines, width, log) {
    const box = document.createElement('div');
    box.className = 'chart';
    box.innerHTML = `<h3>${esc(title)} <small>${esc(unit)}${log ? ', log scale' : ''}</small></h3>`;
    el.appendChild(box);
    if (log) lines = lines.map((l) => ({ ...l, data: l.data.map((v) => (v === null ? null : Math.max(v, log))) }));
    new uPlot({
      width, height: 220, legend: { live: false },
      scales: { x: { time: false }, y: log ? { distr: 3, log: 10 } : { range: (u, lo, hi) => [0, Math.max(1e-9, hi * 1.08)] } },
      axes: [{ label: 'seconds', size: 34 }, { size: 60 }],
      series: [{ label: 't' }, ...lines.map((l) => ({ label: l.label, stroke: l.color, width: 2, dash: l.dash, spanGaps: true, points: { show: false } }))],
    }, [xs, ...lines.map((l) => l.data)], box);
  }

  // compare: one x axis for every run (they sample at their own instants): resample onto a grid.
  function aligned(runs, key, scale = 1) {
    const end = Math.max(...runs.map((r) => (r.series.t.length ? r.series.t[r.series.t.length - 1] : 0)));
    const xs = [];
    for (let t = 0; t <= end + 1e-9; t += 0.1) xs.push(Math.round(t * 10) / 10);
    return { xs, lines: runs.map((r) => {
      const t = r.series.t, v = r.series[key];
      let j = 0;
      return { label: r.summary.strategy, color: COLORS[r.summary.strategy], data: xs.map((x) => {
        while (j + 1 < t.length && t[j + 1] <= x) j++;
        if (!t.length || x < t[0] || x > t[t.length - 1] + 0.2) return null;
        return v[j] === null ? null : v[j] * scale;
      }) };
    }) };
  }

  function summaryTable(runs) {
    const rows = runs.map((r) => {
      const s = r.summary;
      const sw = `<span class="swatch" style="background:${COLORS[s.strategy]}"></span>`;
      if (!s.available) return `<tr><td>${sw}${esc(s.strategy)}</td><td colspan="10" class="coming">${esc(s.verdict)}</td></tr>`;
      return `<tr><td>${sw}<b>${esc(s.strategy)}</b></td><td>${num(s.produced)}</td><td>${num(s.consumed)}</td>` +
        `<td class="${s.lost ? 'bad' : 'good'}">${num(s.lost)} (${pct(s.loss_share)})</td>` +
        `<td>${num(s.consume_rate, 1)}</td><td>${pct(s.wait_share)}</td>` +
        `<td>${num(s.latency_p50_ms, 0)}</td><td>${num(s.latency_p99_ms, 0)}</td>` +
        `<td>${num(s.peak_depth)}</td><td>${mib(s.peak_buffered_bytes)}</td><td>${mib(s.peak_rss_bytes)}</td>` +
        `<td class="verdict">${esc(s.verdict)}</td></tr>`;
    }).join('');
    return `<table><thead><tr><th>strategy</th><th>produced</th><th>consumed</th><th>lost</th><th>consumed/s</th>` +
      `<th>producer waiting</th><th>latency p50 ms</th><th>p99 ms</th><th>peak depth</th><th>peak buffered MiB</th>` +
      `<th>peak RSS MiB</th><th class="verdict">what happened</th></tr></thead><tbody>${rows}</tbody></table>`;
  }

  if (R.kind === 'compare') {
    const runs = R.runs.filter((r) => r.summary.available);
    root.innerHTML = `<h1>Block or drop? Every strategy on one scenario</h1>` +
      `<p class="sub">bp-console compare · ${esc(scenario)} · ${num(runs[0] ? runs[0].summary.seconds : 0, 0)} s per strategy · ` +
      `real threads through the bp library</p>${summaryTable(R.runs)}<div class="grid" id="grid"></div>`;
    const grid = document.getElementById('grid');
    const w = Math.max(420, Math.floor((document.body.clientWidth - 70) / 2));
    let a = aligned(runs, 'depth'); chart(grid, 'Queue depth', 'items buffered', a.xs, a.lines, w, 0.5);
    a = aligned(runs, 'consume_rate'); chart(grid, 'Throughput', 'items consumed per second', a.xs, a.lines, w);
    a = aligned(runs, 'latency_p99_ms'); chart(grid, 'Latency p99', 'ms from birth to consumption (last 3 s)', a.xs, a.lines, w, 0.1);
    a = aligned(runs, 'buffered_bytes', 1 / (1 << 20)); chart(grid, 'Memory held by the queue', 'MiB', a.xs, a.lines, w);
    a = aligned(runs, 'lost'); chart(grid, 'Items lost', 'dropped + evicted + rejected, cumulative', a.xs, a.lines, w);
    a = aligned(runs, 'wait_share', 100); chart(grid, 'Producer waiting', '% of its time (last second)', a.xs, a.lines, w);
  } else {
    const r = R;
    root.innerHTML = `<h1>bp-console run: ${esc(r.summary.strategy)}</h1><p class="sub">${esc(scenario)}</p>` +
      `${summaryTable([r])}<div class="grid" id="grid"></div><h2>Event log</h2><pre class="log" id="log"></pre>`;
    const grid = document.getElementById('grid');
    const w = Math.max(420, Math.floor((document.body.clientWidth - 70) / 2));
    const t = r.series.t, d = r.series;
    chart(grid, 'Queue depth', 'items', t, [{ label: 'depth', color: '#c62828', data: d.depth }], w);
    chart(grid, 'Throughput', 'items/s', t, [{ label: 'produced/s', color: '#1f6feb', data: d.produce_rate }, { label: 'consumed/s', color: '#2e7d32', data: d.consume_rate }], w);
    chart(grid, 'Latency', 'ms', t, [{ label: 'p50', color: '#8e44ad', data: d.latency_p50_ms }, { label: 'p99', color: '#f0a30a', data: d.latency_p99_ms }], w);
    chart(grid, 'Memory', 'MiB', t, [{ label: 'RSS', color: '#1f2328', data: d.rss_bytes.map((b) => b / (1 << 20)) }, { label: 'buffered items', color: '#c62828', data: d.buffered_bytes.map((b) => b / (1 << 20)) }], w);
    document.getElementById('log').textContent = r.events.map((e) => `${e.t.toFixed(2).padStart(8)} s  ${e.text}`).join('\n');
  }
})();

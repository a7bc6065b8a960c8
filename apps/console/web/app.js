// bp-console front end: controls -> JSON API, /api/stream (Server-Sent Events) -> views.
// Plain JS, no build step; charts with uPlot (bundled by the binary, nothing fetched online).
'use strict';

const $ = (id) => document.getElementById(id);
const WINDOW_S = 60;            // seconds of history in the charts
const MAX_LOG = 200;            // lines kept in the event log
const MIN_RATE = 0.5, MAX_RATE = 100000, MAX_CAP = 10000;

const state = { settings: null, strategies: [], scenarios: [], snapshot: null, lastT: -1 };
const series = { t: [], depth: [], capacity: [], prod: [], cons: [], p50: [], p99: [], rss: [], buf: [] };
const charts = {};
window.bpCharts = charts;        // for the browser test and the curious

// --- scales: sliders are log-scale ---------------------------------------------------------------
const rateFromPos = (p) => MIN_RATE * Math.pow(MAX_RATE / MIN_RATE, p / 1000);
const posFromRate = (r) => Math.round(1000 * Math.log(r / MIN_RATE) / Math.log(MAX_RATE / MIN_RATE));
const capFromPos = (p) => (p <= 0 ? 0 : Math.round(Math.pow(MAX_CAP, p / 1000)));
const posFromCap = (c) => (c <= 0 ? 0 : Math.max(1, Math.round(1000 * Math.log(c) / Math.log(MAX_CAP))));
const roundRate = (r) => (r >= 100 ? Math.round(r) : r >= 10 ? Math.round(r * 10) / 10 : Math.round(r * 100) / 100);
const fmtRate = (r) => `${roundRate(r).toLocaleString('en-US')}/s`;
const fmtInt = (n) => Number(n).toLocaleString('en-US');
const mib = (b) => b / (1 << 20);

// --- API ---------------------------------------------------------------------------------------
async function api(path, body) {
  const init = { method: path === '/api/state' || path.startsWith('/api/series') ? 'GET' : 'POST' };
  if (body !== undefined) {
    init.headers = { 'Content-Type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    showError(data.error || `${res.status} ${res.statusText}`);
    throw new Error(data.error);
  }
  showError(null);
  if (data.settings) applyState(data);
  return data;
}

function showError(text) {
  const e = $('error');
  e.hidden = !text;
  e.textContent = text ? `Refused: ${text}` : '';
}

// --- controls ----------------------------------------------------------------------------------
function buildStrategies() {
  const box = $('strategies');
  box.innerHTML = '';
  for (const s of state.strategies) {
    const b = document.createElement('button');
    b.id = `strategy-${s.name}`;
    b.dataset.strategy = s.name;
    b.setAttribute('role', 'radio');
    b.title = s.description;
    b.textContent = s.name.replace('_', ' ');
    if (!s.available) {
      b.disabled = true;
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = 'coming';
      b.appendChild(badge);
      b.title = `${s.description} (coming: not in this build yet)`;
    }
    b.addEventListener('click', () => api('/api/settings', { strategy: s.name }).catch(() => {}));
    box.appendChild(b);
  }
}

function buildScenarios() {
  const box = $('scenarios');
  box.innerHTML = '';
  for (const s of state.scenarios) {
    const b = document.createElement('button');
    b.id = `scenario-${s.name}`;
    b.dataset.scenario = s.name;
    b.setAttribute('role', 'radio');
    b.title = s.description;
    b.textContent = s.name === 'pipeline' ? 'pipeline (3 stages)' : 'channel (1 buffer)';
    b.addEventListener('click', () => api('/api/settings', { scenario: s.name }).catch(() => {}));
    box.appendChild(b);
  }
}

function applyState(data) {
  state.settings = data.settings;
  if (data.strategies && state.strategies.length === 0) {
    state.strategies = data.strategies;
    buildStrategies();
  }
  if (data.scenarios && state.scenarios.length === 0) {
    state.scenarios = data.scenarios;
    buildScenarios();
  }
  const s = state.settings;
  for (const b of document.querySelectorAll('#scenarios button')) {
    const on = b.dataset.scenario === s.scenario;
    b.classList.toggle('on', on);
    b.setAttribute('aria-checked', on);
  }
  const scenarioInfo = state.scenarios.find((x) => x.name === s.scenario);
  $('scenario-text').textContent = scenarioInfo ? scenarioInfo.description : '';
  document.body.classList.toggle('scenario-pipeline', s.scenario === 'pipeline');
  for (const [id, key] of PIPELINE_FIELDS)
    if (document.activeElement !== $(id)) $(id).value = s[key];
  if ('pipeline' in data) renderPipeline(data.pipeline);
  for (const b of document.querySelectorAll('#strategies button')) {
    const on = b.dataset.strategy === s.strategy;
    b.classList.toggle('on', on);
    b.setAttribute('aria-checked', on);
  }
  const info = state.strategies.find((x) => x.name === s.strategy);
  let text = info ? info.description : '';
  if (s.strategy === 'throttle')
    text += ` Tokens: ${fmtRate(s.throttle_rate || s.consumer_rate)}${s.throttle_rate ? '' : ' (the consumer rate)'}, burst ${s.throttle_burst}.`;
  if (s.strategy === 'unbounded')
    text += ` Safety cap: ${Math.round(s.unbounded_cap_bytes / (1 << 20))} MiB of buffered items.`;
  $('strategy-text').textContent = text;
  if (document.activeElement !== $('producer-rate')) $('producer-rate').value = posFromRate(s.producer_rate);
  if (document.activeElement !== $('consumer-rate')) $('consumer-rate').value = posFromRate(s.consumer_rate);
  if (document.activeElement !== $('capacity')) $('capacity').value = posFromCap(s.capacity);
  $('throttle-controls').hidden = s.strategy !== 'throttle';
  const tokens = s.throttle_rate || s.consumer_rate;
  if (document.activeElement !== $('throttle-rate')) $('throttle-rate').value = posFromRate(tokens);
  $('throttle-rate-out').textContent = fmtRate(tokens);
  $('throttle-follow').classList.toggle('on', !s.throttle_rate);
  $('producer-rate-out').textContent = fmtRate(s.producer_rate);
  $('consumer-rate-out').textContent = fmtRate(s.consumer_rate);
  $('capacity-out').textContent = fmtInt(s.capacity);
  if (document.activeElement !== $('producers')) $('producers').value = s.producers;
  if (document.activeElement !== $('consumers')) $('consumers').value = s.consumers;
  if (data.snapshot) render(data.snapshot);
}

function wireControls() {
  for (const b of document.querySelectorAll('#presets button'))
    b.addEventListener('click', () => api('/api/preset', { name: b.dataset.preset }).catch(() => {}));
  $('producer-toggle').addEventListener('click', () =>
    api(state.snapshot && state.snapshot.producer_running ? '/api/producer/stop' : '/api/producer/start').catch(() => {}));
  $('consumer-toggle').addEventListener('click', () =>
    api(state.snapshot && state.snapshot.consumer_running ? '/api/consumer/stop' : '/api/consumer/start').catch(() => {}));
  $('reset').addEventListener('click', () => api('/api/reset').catch(() => {}));
  $('stop-all').addEventListener('click', () => api('/api/stop').catch(() => {}));

  const rate = (id, key) => {
    const el = $(id);
    el.addEventListener('input', () => { $(`${id}-out`).textContent = fmtRate(rateFromPos(+el.value)); });
    el.addEventListener('change', () => api('/api/settings', { [key]: roundRate(rateFromPos(+el.value)) }).catch(() => {}));
  };
  rate('producer-rate', 'producer_rate');
  rate('throttle-rate', 'throttle_rate');
  $('throttle-follow').addEventListener('click', () => api('/api/settings', { throttle_rate: 0 }).catch(() => {}));
  rate('consumer-rate', 'consumer_rate');
  const cap = $('capacity');
  cap.addEventListener('input', () => { $('capacity-out').textContent = fmtInt(capFromPos(+cap.value)); });
  cap.addEventListener('change', () => api('/api/settings', { capacity: capFromPos(+cap.value) }).catch(() => {}));
  for (const key of ['producers', 'consumers'])
    $(key).addEventListener('change', () => api('/api/settings', { [key]: Math.round(+$(key).value) }).catch(() => {}));
  // Pipeline fields go to the server as typed: it refuses what is out of range, with a reason.
  for (const [id, key] of PIPELINE_FIELDS)
    $(id).addEventListener('change', () => api('/api/settings', { [key]: Number($(id).value) }).catch(() => {}));
}

// --- the pipeline scenario -----------------------------------------------------------------------
const PIPELINE_FIELDS = [
  ['pipeline-slow-ms', 'pipeline_slow_ms'],
  ['pipeline-slow-parallelism', 'pipeline_slow_parallelism'],
  ['pipeline-stage-ms', 'pipeline_stage_ms'],
  ['pipeline-capacity', 'pipeline_capacity'],
];
const pct = (f) => `${Math.round(f * 100)}%`;

function stageBox(st) {
  const d = document.createElement('div');
  d.className = 'pl-stage';
  d.id = `pl-stage-${st.name}`;
  d.innerHTML = '<b class="name"></b><span class="tag" hidden>bottleneck</span><span class="rate"></span>' +
    '<div class="pl-times"><div class="busy"></div><div class="idle"></div><div class="blocked"></div></div>' +
    '<span class="pl-legend"></span>';
  return d;
}

function linkBox(l) {
  const d = document.createElement('div');
  d.className = 'pl-link';
  d.id = `pl-link-${l.to}`;
  d.title = `the link from ${l.from} to ${l.to}`;
  d.innerHTML = '<span class="arrow">→</span><div class="pl-tube"><div></div></div><span class="depth"></span><span class="hwm pl-legend"></span>';
  return d;
}

function renderPipeline(p) {
  const flow = $('pl-flow');
  if (!p) {
    flow.innerHTML = '';
    flow.dataset.shape = '';
    $('pl-bottleneck').textContent = 'starting…';
    return;
  }
  // The stages, with the link in front of each stage (after the source) between them.
  const shape = p.stages.map((x) => x.name).join('>');
  if (flow.dataset.shape !== shape) {
    flow.innerHTML = '';
    p.stages.forEach((st, i) => {
      const link = p.links.find((l) => l.to === st.name);
      if (i > 0 && link) flow.appendChild(linkBox(link));
      flow.appendChild(stageBox(st));
    });
    flow.dataset.shape = shape;
  }
  for (const st of p.stages) {
    const d = $(`pl-stage-${st.name}`);
    if (!d) continue;
    d.classList.toggle('bottleneck', st.bottleneck);
    d.querySelector('.tag').hidden = !st.bottleneck;
    d.querySelector('.name').textContent = st.parallelism > 1 ? `${st.name} ×${st.parallelism}` : st.name;
    d.querySelector('.rate').textContent = `${fmtRate(st.items_per_second)} · ${fmtInt(st.items_out)} items since the start`;
    d.querySelector('.busy').style.width = pct(st.busy);
    d.querySelector('.idle').style.width = pct(st.idle);
    d.querySelector('.blocked').style.width = pct(st.blocked);
    d.querySelector('.pl-legend').textContent = `busy ${pct(st.busy)} · idle ${pct(st.idle)} · blocked ${pct(st.blocked)}`;
  }
  for (const l of p.links) {
    const d = $(`pl-link-${l.to}`);
    if (!d) continue;
    const fill = l.capacity ? Math.min(1, l.depth / l.capacity) : 0;
    d.dataset.depth = l.depth;
    d.dataset.capacity = l.capacity;
    const bar = d.querySelector('.pl-tube div');
    bar.style.width = pct(fill);
    bar.className = fill >= 0.8 ? 'red' : fill >= 0.5 ? 'amber' : '';
    d.querySelector('.depth').textContent = `${fmtInt(l.depth)} / ${fmtInt(l.capacity)}`;
    d.querySelector('.hwm').textContent = `avg ${pct(l.average_fill)}`;
  }
  const v = $('pl-bottleneck');
  v.innerHTML = '';
  if (p.bottleneck) {
    const link = p.links.find((l) => l.to === p.bottleneck);
    v.append('Bottleneck: ');
    const b = document.createElement('b');
    b.textContent = p.bottleneck;
    v.append(b, link ? ` (its input link holds ${link.depth} of ${link.capacity})` : ' (the source limits)');
  } else {
    v.textContent = 'No bottleneck named yet (no stage busy more than half the time with work queued in front of it)';
  }
  $('pl-elapsed').textContent = `${p.elapsed_s.toFixed(1)} s`;
}

// Polls the pipeline's report while the pipeline scenario is selected (one request at a time).
let pipelinePolling = false;
async function pollPipeline() {
  if (pipelinePolling || !state.settings || state.settings.scenario !== 'pipeline') return;
  pipelinePolling = true;
  try {
    const res = await fetch('/api/pipeline');
    if (res.ok) {
      const data = await res.json();
      if (data.scenario === 'pipeline') renderPipeline(data.pipeline);
    }
  } catch (e) {
    // The live stream's indicator already tells when the server is away.
  } finally {
    pipelinePolling = false;
  }
}

// --- views -------------------------------------------------------------------------------------
const MAX_SLOTS = 120;

function renderSlots(depth, capacity) {
  const box = $('slots');
  const unbounded = state.settings && state.settings.strategy === 'unbounded';
  const shown = capacity === 0 ? 1 : Math.min(capacity, MAX_SLOTS);
  const per = capacity === 0 ? 1 : capacity / shown;  // items per drawn slot
  if (box.childElementCount !== shown) {
    box.innerHTML = '';
    for (let i = 0; i < shown; i++) {
      const d = document.createElement('div');
      d.className = shown > 40 ? 'slot small' : 'slot';
      box.appendChild(d);
    }
  }
  const full = capacity === 0 ? 0 : Math.min(shown, Math.ceil(depth / per));
  box.childNodes.forEach((d, i) => d.classList.toggle('full', i < full));
  const fill = capacity === 0 ? 0 : depth / capacity;
  const level = fill >= 0.8 ? 'red' : fill >= 0.5 ? 'amber' : 'ok';
  box.className = level;
  $('fill').className = level === 'ok' ? '' : level;
  $('fill').style.width = `${Math.min(100, fill * 100)}%`;
  $('fill-text').textContent = capacity === 0
    ? 'capacity 0: rendezvous (each item handed over directly)'
    : unbounded
      ? `${fmtInt(depth)} items queued: unbounded (safety cap ${fmtInt(capacity)} items), ${Math.round(fill * 100)}% of the cap`
      : `${fmtInt(depth)} / ${fmtInt(capacity)} (${Math.round(fill * 100)}%)${per > 1 ? `: one slot drawn per ${Math.round(per)} items` : ''}`;
}

function render(s) {
  state.snapshot = s;
  for (const k of ['produced', 'consumed', 'dropped', 'evicted', 'rejected', 'in_flight'])
    $(`count-${k}`).textContent = fmtInt(s[k]);
  renderSlots(s.depth, s.capacity);

  const ps = $('producer-state');
  const reason = s.waiting_for || 'buffer full';
  if (!s.producer_running) { ps.textContent = 'stopped'; ps.className = 'state'; }
  else if (s.producers_waiting > 0) {
    ps.textContent = `waiting: ${reason}${s.producers > 1 ? ` (${s.producers_waiting}/${s.producers})` : ''}`;
    ps.className = 'state waiting';
  } else { ps.textContent = 'running'; ps.className = 'state running'; }
  const cs = $('consumer-state');
  if (!s.consumer_running) { cs.textContent = 'stopped'; cs.className = 'state'; }
  else if (s.consumer_starts_in > 0) { cs.textContent = `starts in ${s.consumer_starts_in.toFixed(1)} s`; cs.className = 'state'; }
  else if (s.depth === 0 && s.consume_rate < 0.5 * state.settings.consumer_rate) { cs.textContent = 'idle: buffer empty'; cs.className = 'state'; }
  else { cs.textContent = 'running'; cs.className = 'state running'; }
  $('wait-share').textContent = `${Math.round(s.wait_share * 100)}%`;
  $('wait-bar').style.width = `${Math.round(s.wait_share * 100)}%`;
  const pt = $('producer-toggle'), ct = $('consumer-toggle');
  pt.textContent = s.producer_running ? 'Stop producer' : 'Start producer';
  pt.classList.toggle('on', s.producer_running);
  ct.textContent = s.consumer_running ? 'Stop consumer' : 'Start consumer';
  ct.classList.toggle('on', s.consumer_running);
}

function addPoint(s) {
  if (s.t < state.lastT) for (const k in series) series[k].length = 0;  // the scenario restarted
  state.lastT = s.t;
  series.t.push(s.t);
  series.depth.push(s.depth);
  series.capacity.push(s.strategy === 'unbounded' ? null : s.capacity);
  series.prod.push(s.produce_rate);
  series.cons.push(s.consume_rate);
  series.p50.push(s.latency_p50_ms);
  series.p99.push(s.latency_p99_ms);
  series.rss.push(mib(s.rss_bytes));
  series.buf.push(mib(s.buffered_bytes));
  while (series.t.length && series.t[0] < s.t - WINDOW_S) for (const k in series) series[k].shift();
}

function makeCharts() {
  const make = (id, lines, opts = {}) => {
    const el = $(id);
    const width = () => Math.max(260, el.clientWidth);
    const u = new uPlot({
      width: width(), height: 170,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false }, y: opts.y || {} },
      axes: [{ label: 's', size: 30 }, { size: 56 }],
      series: [{ label: 't' }, ...lines.map(([label, stroke, dash]) => ({ label, stroke, width: 2, dash, spanGaps: true, points: { show: false } }))],
    }, [[], ...lines.map(() => [])], el);
    new ResizeObserver(() => u.setSize({ width: width(), height: 170 })).observe(el);
    return u;
  };
  charts.depth = make('chart-depth', [['depth', '#c62828'], ['capacity', '#9aa4b2', [5, 5]]], { y: { range: (u, lo, hi) => [0, Math.max(1, hi)] } });
  charts.rate = make('chart-rate', [['produced/s', '#1f6feb'], ['consumed/s', '#2e7d32']], { y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } });
  charts.latency = make('chart-latency', [['p50', '#8e44ad'], ['p99', '#f0a30a']], { y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } });
  charts.memory = make('chart-memory', [['RSS', '#1f2328'], ['buffered items', '#c62828']], { y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } });
}

function redrawCharts() {
  charts.depth.setData([series.t, series.depth, series.capacity]);
  charts.rate.setData([series.t, series.prod, series.cons]);
  charts.latency.setData([series.t, series.p50, series.p99]);
  charts.memory.setData([series.t, series.rss, series.buf]);
}

function addEvents(events) {
  const log = $('log');
  for (const e of events) {
    const li = document.createElement('li');
    li.className = e.kind;
    const time = document.createElement('time');
    time.textContent = `${e.t.toFixed(1).padStart(6)} s`;
    li.append(time, e.text);
    log.prepend(li);
  }
  while (log.childElementCount > MAX_LOG) log.lastChild.remove();
}

// --- live stream -------------------------------------------------------------------------------
let redrawPending = false;
function connect() {
  const es = new EventSource('/api/stream');
  es.onopen = () => { $('link').textContent = 'live'; $('link').className = 'link up'; };
  es.onerror = () => { $('link').textContent = 'reconnecting…'; $('link').className = 'link down'; };
  es.onmessage = (m) => {
    const { snapshot, events } = JSON.parse(m.data);
    render(snapshot);
    addPoint(snapshot);
    addEvents(events);
    if (!redrawPending) {
      redrawPending = true;
      requestAnimationFrame(() => { redrawPending = false; redrawCharts(); });
    }
  };
}

async function main() {
  wireControls();
  makeCharts();
  const data = await api('/api/state');
  const past = await api('/api/series?max=900');
  for (const s of past) addPoint(s);
  redrawCharts();
  connect();
  setInterval(pollPipeline, 250);
  return data;
}

main().catch((e) => showError(String(e)));

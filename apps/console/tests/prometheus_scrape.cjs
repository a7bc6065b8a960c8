// bp's statistics reach a real Prometheus server. Starts bp-console (its channel scenario
// running) and metrics_exporter (every other primitive at work) on free loopback ports, and
// Debian's prometheus scraping both every second into a temporary directory; then asks
// Prometheus's HTTP query API for bp_channel_sent_total twice, seconds apart, and checks that it
// rose, and that every family either process serves is stored there.
//
// node prometheus_scrape.cjs --console build/dev/apps/console/bp-console \
//   --exporter build/dev/connectors/prometheus/metrics_exporter --prometheus /usr/bin/prometheus
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['console', 'exporter', 'prometheus'])
  if (!args[k]) { console.error(`prometheus_scrape: --${k} is required`); process.exit(2); }

// Every wait below is bounded; the whole test too, and every process dies with it.
const deadline = setTimeout(() => fail('the test took over 120 s'), 120_000);
const children = [];
let tmp = null;

function cleanup(code) {
  clearTimeout(deadline);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  const finish = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(code);
  };
  const alive = children.filter((c) => c.exitCode === null && c.signalCode === null);
  if (alive.length === 0) return finish();
  let left = alive.length;
  for (const c of alive) c.once('exit', () => { if (--left === 0) finish(); });
  setTimeout(finish, 5000);
}
function fail(why) {
  console.error(`prometheus_scrape: FAILED, ${why}`);
  cleanup(1);
}
process.on('SIGINT', () => fail('interrupted'));
process.on('SIGTERM', () => fail('terminated'));
process.on('unhandledRejection', (e) => fail(e && e.stack ? e.stack : String(e)));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function start(name, exe, argv, logFile) {
  const log = fs.openSync(logFile, 'w');
  const c = spawn(exe, argv, { stdio: ['ignore', 'pipe', log] });
  children.push(c);
  c.on('exit', (code, sig) => { c.exitedEarly = `${name} exited (${code ?? sig})`; });
  return c;
}

async function get(url, timeoutMs = 5000) {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: r.status, text: await r.text() };
}

// Retries `probe` (an async function answering a value or null) until it answers, `ms` at most.
async function until(what, ms, probe) {
  const end = Date.now() + ms;
  let last = null;
  for (;;) {
    for (const c of children) if (c.exitedEarly) throw new Error(`${c.exitedEarly} while waiting for ${what}`);
    try {
      const v = await probe();
      if (v !== null && v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(250);
  }
}

// The names Prometheus stores for what a /metrics text declares: a histogram is three series.
function seriesNames(text) {
  const names = [];
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (m[2] === 'histogram') names.push(`${m[1]}_bucket`, `${m[1]}_sum`, `${m[1]}_count`);
    else names.push(m[1]);
  }
  return names;
}

async function main() {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-prometheus-'));

  // bp-console on a port it picks and announces; the channel scenario runs fast so that its
  // producer waits for room.
  const consoleProc = start('bp-console', args.console, ['--bind', '127.0.0.1', '--port', '0'],
                            path.join(tmp, 'console.log'));
  let out = '';
  consoleProc.stdout.on('data', (d) => { out += d; });
  const consoleUrl = await until('bp-console to announce its port', 10_000, async () => {
    const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
    return m ? `http://127.0.0.1:${m[1]}` : null;
  });
  const post = (p, body) => fetch(consoleUrl + p, {
    method: 'POST', body: body ?? '', headers: { 'Content-Type': 'application/json' },
    signal: AbortSignal.timeout(5000),
  });
  let r = await post('/api/settings', JSON.stringify({ producer_rate: 200, consumer_rate: 50 }));
  if (r.status !== 200) throw new Error(`/api/settings answered ${r.status}: ${await r.text()}`);
  r = await post('/api/start');
  if (r.status !== 200) throw new Error(`/api/start answered ${r.status}: ${await r.text()}`);

  const exporterPort = await freePort();
  const exporter = start('metrics_exporter', args.exporter,
                         ['--listen', `127.0.0.1:${exporterPort}`, '--seconds', '150'],
                         path.join(tmp, 'exporter.log'));
  exporter.stdout.resume();

  // What both serve: read before Prometheus starts, the names it must end up storing.
  const consoleText = await until('bp-console /metrics', 10_000, async () => {
    const g = await get(`${consoleUrl}/metrics`);
    return g.status === 200 && g.text.includes('bp_channel_sent_total') ? g.text : null;
  });
  const exporterText = await until('metrics_exporter /metrics', 10_000, async () => {
    const g = await get(`http://127.0.0.1:${exporterPort}/metrics`);
    return g.status === 200 && g.text.includes('bp_') ? g.text : null;
  });
  const expected = new Set([...seriesNames(consoleText), ...seriesNames(exporterText)]);
  if (expected.size < 20) throw new Error(`too few families served: ${[...expected].join(' ')}`);

  const promPort = await freePort();
  fs.writeFileSync(path.join(tmp, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    '  - job_name: console',
    '    static_configs:',
    `      - targets: ['${consoleUrl.replace('http://', '')}']`,
    '  - job_name: exporter',
    '    static_configs:',
    `      - targets: ['127.0.0.1:${exporterPort}']`,
    '',
  ].join('\n'));
  const prom = start('prometheus', args.prometheus, [
    `--config.file=${path.join(tmp, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(tmp, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
  ], path.join(tmp, 'prometheus.log'));
  prom.stdout.resume();
  const promUrl = `http://127.0.0.1:${promPort}`;
  await until('prometheus to be ready', 30_000, async () =>
    (await get(`${promUrl}/-/ready`)).status === 200 ? true : null);

  const sent = async () => {
    const q = encodeURIComponent('bp_channel_sent_total{job="console"}');
    const j = JSON.parse((await get(`${promUrl}/api/v1/query?query=${q}`)).text);
    if (j.status !== 'success' || j.data.result.length === 0) return null;
    return Number(j.data.result[0].value[1]);
  };
  const first = await until('a first bp_channel_sent_total sample', 30_000, sent);
  await sleep(3000);
  const second = await until('bp_channel_sent_total to rise', 20_000, async () => {
    const v = await sent();
    return v !== null && v > first ? v : null;
  });
  console.log(`prometheus_scrape: bp_channel_sent_total{job="console"} ${first} -> ${second}`);

  // Every family served, as Prometheus stores it.
  const missing = await until('every family in Prometheus', 30_000, async () => {
    const j = JSON.parse((await get(`${promUrl}/api/v1/label/__name__/values`)).text);
    const stored = new Set(j.data);
    const gone = [...expected].filter((n) => !stored.has(n));
    return gone.length === 0 ? [] : null;
  }).catch(async (e) => {
    const j = JSON.parse((await get(`${promUrl}/api/v1/label/__name__/values`)).text);
    const stored = new Set(j.data);
    throw new Error(`${e.message}; missing: ${[...expected].filter((n) => !stored.has(n)).join(' ')}`);
  });
  void missing;
  // Every primitive of the library among them (the exporter runs one of each).
  const primitives = ['channel', 'unbounded_channel', 'semaphore', 'token_bucket', 'leaky_bucket',
                      'concurrency_limiter', 'memory_budget', 'watermark_buffer', 'rs_operator'];
  const absent = primitives.filter((p) => ![...expected].some((n) => n.startsWith(`bp_${p}_`)));
  if (absent.length) throw new Error(`no series of: ${absent.join(' ')}`);
  console.log(`prometheus_scrape: ${expected.size} series names stored, of ${primitives.join(' ')}`);

  // And a histogram that moved: the exporter's channel makes its producer wait.
  const q = encodeURIComponent('bp_channel_send_wait_seconds_count{job="exporter",channel="orders"}');
  await until('send waits counted', 10_000, async () => {
    const j = JSON.parse((await get(`${promUrl}/api/v1/query?query=${q}`)).text);
    return j.data.result.length && Number(j.data.result[0].value[1]) > 0 ? true : null;
  });
  console.log('prometheus_scrape: PASSED');
  cleanup(0);
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));

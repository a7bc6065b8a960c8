// End-to-end test of bp-console in a real browser: Debian's chromium driven by playwright-core.
// Starts the binary on a free loopback port, loads the page, clicks Overload and checks that
// produced/consumed rise, that the strategy's signature shows (drops under drop_newest, the
// producer waiting under block), that the charts drew; saves a screenshot for the README. Then
// selects the pipeline scenario and checks that the page names the slow stage (enrich) as the
// bottleneck with its input link filling, and that more enrich workers move the bottleneck.
//
// node e2e_browser.cjs --exe build/dev/apps/console/bp-console --chromium /usr/bin/chromium \
//   --node-modules build/dev/apps/console/web/node_modules [--screenshot docs/console.png]
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['exe', 'chromium', 'node-modules'])
  if (!args[k]) { console.error(`e2e: --${k} is required`); process.exit(2); }
if (!fs.existsSync(args.chromium)) {
  console.log(`e2e: SKIPPED, ${args.chromium} is missing (apt-get install chromium)`);
  process.exit(0);
}
const { chromium } = require(path.join(path.resolve(args['node-modules']), 'playwright-core'));

// Every wait is bounded; the whole test too.
const deadline = setTimeout(() => { console.error('e2e: FAILED, the test took over 100 s'); cleanup(1); }, 100_000);
let server = null, browser = null, profile = null;

function cleanup(code) {
  clearTimeout(deadline);
  const done = () => {
    if (server && server.exitCode === null) server.kill('SIGKILL');
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    process.exit(code);
  };
  const closing = browser ? browser.close().catch(() => {}) : Promise.resolve();
  closing.then(() => {
    if (!server || server.exitCode !== null) return done();
    server.once('exit', done);
    server.kill('SIGINT');          // Ctrl-C: must stop cleanly
    setTimeout(done, 5000);
  });
}

function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn(args.exe, ['--bind', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no port announced within 10 s: ${out}`)), 10_000);
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) { clearTimeout(timer); resolve(`http://127.0.0.1:${m[1]}/`); }
    });
    server.on('exit', (code) => reject(new Error(`bp-console exited (${code}) before serving: ${out}`)));
  });
}

const num = async (page, id) => Number((await page.textContent(`#${id}`)).replace(/,/g, ''));

async function waitFor(what, fn, ms = 15_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function chartDrew(page, name) {
  return page.evaluate((n) => {
    const u = window.bpCharts && window.bpCharts[n];
    if (!u || u.data[0].length < 5) return false;
    const c = u.root.querySelector('canvas');
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let inked = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) inked++;
    return inked > 500;
  }, name);
}

(async () => {
  const url = await startServer();
  console.log(`e2e: bp-console at ${url}`);
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-e2e-chromium-'));
  // A fresh, empty profile (--user-data-dir, which playwright passes for a persistent context).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: args.chromium,
    headless: true,
    timeout: 30_000,
    viewport: { width: 1400, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = browser.pages()[0] || await browser.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const external = [];
  page.on('request', (r) => { if (!r.url().startsWith(url)) external.push(r.url()); });
  await page.goto(url, { waitUntil: 'load', timeout: 15_000 });
  await page.waitForSelector('#strategy-drop_newest', { timeout: 15_000 });
  await waitFor('the live stream', async () => (await page.textContent('#link')) === 'live');

  // drop_newest, then Overload: produced/consumed rise, drops appear.
  await page.click('#strategy-drop_newest');
  await waitFor('strategy drop_newest selected', async () => page.$eval('#strategy-drop_newest', (b) => b.classList.contains('on')));
  await page.click('#preset-overload');
  await waitFor('items produced and consumed', async () => (await num(page, 'count-produced')) >= 3 && (await num(page, 'count-consumed')) >= 1);
  const p1 = await num(page, 'count-produced'), c1 = await num(page, 'count-consumed');
  await waitFor('produced and consumed rising', async () => (await num(page, 'count-produced')) > p1 && (await num(page, 'count-consumed')) > c1);
  await waitFor('drops under drop_newest', async () => (await num(page, 'count-dropped')) > 0);
  await waitFor('the drop in the event log', async () => (await page.textContent('#log')).includes('dropped: drop-newest'));
  if ((await num(page, 'count-evicted')) !== 0 || (await num(page, 'count-rejected')) !== 0)
    throw new Error('drop_newest must neither evict nor reject');

  // block: the producer waits, nothing is dropped.
  await page.click('#strategy-block');
  await page.click('#preset-overload');
  await waitFor('the producer waiting under block', async () => (await page.textContent('#producer-state')).startsWith('waiting'));
  await waitFor('waiting share shown', async () => parseInt(await page.textContent('#wait-share'), 10) > 20);
  await waitFor('the wait in the event log', async () => (await page.textContent('#log')).includes('producer waits: buffer full'));
  if ((await num(page, 'count-dropped')) !== 0) throw new Error('block must not drop');
  await waitFor('the buffer drawn full', async () => (await page.$$('#slots .slot.full')).length === 12);

  for (const c of ['depth', 'rate', 'latency', 'memory'])
    await waitFor(`chart ${c} drew`, () => chartDrew(page, c));

  // A refused setting shows the server's reason.
  await page.evaluate(() => fetch('/api/settings', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"capacity": 99999}' }));
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  if (external.length) throw new Error(`requests outside the console: ${external.join(', ')}`);

  if (args.screenshot) {
    await page.waitForTimeout(1500);  // a little history in the charts
    fs.mkdirSync(path.dirname(args.screenshot), { recursive: true });
    await page.screenshot({ path: args.screenshot, fullPage: true });
    console.log(`e2e: screenshot ${args.screenshot}`);
  }
  // Signal and throttle, when this build has them: the producer waits for demand / tokens.
  for (const [name, reason] of [['signal', 'no demand'], ['throttle', 'no token']]) {
    if (await page.$eval(`#strategy-${name}`, (b) => b.disabled)) {
      console.log(`e2e: ${name} is marked coming in this build`);
      continue;
    }
    await page.click(`#strategy-${name}`);
    await page.click('#preset-overload');
    await waitFor(`the producer waiting (${reason}) under ${name}`,
      async () => (await page.textContent('#producer-state')).startsWith(`waiting: ${reason}`));
    await waitFor(`items consumed under ${name}`, async () => (await num(page, 'count-consumed')) >= 2);
    if ((await num(page, 'count-dropped')) + (await num(page, 'count-evicted')) + (await num(page, 'count-rejected')) !== 0)
      throw new Error(`${name} must not lose items`);
  }
  // The pipeline scenario: enrich is slow, the link in front of it fills, the report names it.
  await page.click('#scenario-pipeline');
  await waitFor('the pipeline scenario selected', async () => page.$eval('#scenario-pipeline', (b) => b.classList.contains('on')));
  if (await page.isVisible('#buffer-card')) throw new Error('the channel view must hide in the pipeline scenario');
  await waitFor('enrich named as the bottleneck', async () =>
    (await page.textContent('#pl-bottleneck')).startsWith('Bottleneck: enrich') &&
    page.$eval('#pl-stage-enrich', (d) => d.classList.contains('bottleneck')));
  const link = (to) => page.$eval(`#pl-link-${to}`, (d) => ({ depth: Number(d.dataset.depth), capacity: Number(d.dataset.capacity) }));
  await waitFor('the link in front of enrich filling, the one after it low', async () => {
    const before = await link('enrich'), after = await link('write');
    return before.capacity > 0 && before.depth >= before.capacity / 2 && before.depth > after.depth;
  });
  if (args.screenshot) {
    const shot = args.screenshot.replace(/(\.png)?$/, '-pipeline.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`e2e: screenshot ${shot}`);
  }
  // Eight enrich workers outrun parse: the bottleneck moves to parse, enrich's link drains.
  await page.fill('#pipeline-slow-parallelism', '8');
  await page.dispatchEvent('#pipeline-slow-parallelism', 'change');
  await waitFor('parse named as the bottleneck with 8 enrich workers', async () =>
    (await page.textContent('#pl-bottleneck')).startsWith('Bottleneck: parse'), 20_000);
  if (!(await page.textContent('#pl-stage-enrich')).includes('×8')) throw new Error('enrich must show its 8 workers');
  // A refused pipeline setting shows the server's reason.
  await page.fill('#pipeline-slow-parallelism', '99');
  await page.dispatchEvent('#pipeline-slow-parallelism', 'change');
  await waitFor('the refusal shown', async () => (await page.textContent('#error')).includes('pipeline_slow_parallelism'));
  await page.click('#scenario-channel');
  await waitFor('back to the channel scenario', async () => page.isVisible('#buffer-card'));
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);

  console.log('e2e: PASSED');
  cleanup(0);
})().catch((e) => {
  console.error(`e2e: FAILED, ${e.message}`);
  cleanup(1);
});

// Renders a bp-console HTML report (or any local page) to a PNG with Debian's chromium, driven
// by playwright-core: used for the README's compare picture.
//
//   node apps/console/tools/render_png.cjs --node-modules build/dev/apps/console/web/node_modules \
//     --in out/compare/compare.html --out docs/console-compare.png [--width 1400] [--chromium /usr/bin/chromium]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const args = { width: '1400', chromium: '/usr/bin/chromium' };
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['node-modules', 'in', 'out'])
  if (!args[k]) { console.error(`render_png: --${k} is required`); process.exit(2); }
const { chromium } = require(path.join(path.resolve(args['node-modules']), 'playwright-core'));

const timer = setTimeout(() => { console.error('render_png: timed out'); process.exit(1); }, 60_000);
(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'bp-render-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: args.chromium, headless: true, timeout: 30_000,
    viewport: { width: Number(args.width), height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`file://${path.resolve(args.in)}`, { waitUntil: 'load', timeout: 15_000 });
    await page.waitForSelector('.uplot canvas', { timeout: 15_000 });
    if (errors.length) throw new Error(errors.join('; '));
    await page.screenshot({ path: args.out, fullPage: true });
    console.log(`render_png: wrote ${args.out}`);
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
    clearTimeout(timer);
  }
})().catch((e) => { console.error(`render_png: ${e.message}`); process.exit(1); });

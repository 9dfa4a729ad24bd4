// report.html in a real headless Chromium (Debian's /usr/bin/chromium),
// driven by playwright-core. Run through tests/browser/run.sh.
//
// The reports are produced by the real flamefire binary ($FLAMEFIRE_BIN) from
// the real captures in tests/data/captures: `flamefire diff healthy sick` and
// `flamefire render` of several captures. Each check fails loudly; the last
// line is "N passed, N failed" and the exit code is non-zero on any failure.

'use strict';

const { chromium } = require('playwright-core');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const REPO = path.resolve(__dirname, '..', '..');
const CAPTURES = path.join(REPO, 'tests', 'data', 'captures');
const BIN = process.env.FLAMEFIRE_BIN || path.join(REPO, 'target', 'debug', 'flamefire');
const SCREENSHOT = path.join(REPO, 'target', 'artifacts', 'report.png');
// inferno's search highlight (flamegraph.js `searchcolor`).
const SEARCH_COLOR = 'rgb(230,0,230)';

const results = [];
function check(name, fn) {
  results.push({ name, fn });
}

function flamefire(args) {
  const run = spawnSync(BIN, args, { encoding: 'utf8' });
  if (run.error) throw new Error(`could not run ${BIN}: ${run.error.message}`);
  if (run.status !== 0) {
    throw new Error(`flamefire ${args.join(' ')} exited ${run.status}:\n${run.stderr}`);
  }
  return run;
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'flamefire-browser-'));
const diffOut = path.join(work, 'diff');
const renderOut = path.join(work, 'render');
// A file name is a host label in `render`: make it hostile.
const hostileName = '<img src=x onerror=alert(1)>.folded';

let browser;
let page;
let messages = [];
let requests = [];
let dialogs = [];

async function open(report) {
  messages = [];
  requests = [];
  dialogs = [];
  await page.goto('file://' + report);
  // inferno's init runs on load, and its fluid layout in a timeout after it.
  await page.waitForLoadState('load');
  await page.waitForTimeout(300);
}

// The document of the flamegraph iframe with this id.
async function svgFrame(id) {
  const handle = await page.$(`iframe#${id}`);
  assert(handle, `no iframe#${id} in the report`);
  const frame = await handle.contentFrame();
  assert(frame, `iframe#${id} has no document`);
  return frame;
}

async function frameState(frame) {
  return frame.evaluate(() => ({
    root: document.documentElement.nodeName.toLowerCase() === 'svg' || !!document.querySelector('svg'),
    frames: document.getElementById('frames') ? document.getElementById('frames').children.length : 0,
    search: typeof search,
    matched: (document.getElementById('matched') || {}).textContent || '',
    highlighted: [...document.querySelectorAll('#frames rect')]
      .filter((r) => r.getAttribute('fill') === 'rgb(230,0,230)')
      .map((r) => r.parentNode.querySelector('title').textContent),
  }));
}

function noErrors() {
  const errors = messages.filter((m) => m.type === 'error' || m.type === 'pageerror');
  assert(errors.length === 0, 'console errors: ' + JSON.stringify(errors, null, 1).slice(0, 2000));
  const outside = requests.filter((u) => !/^(file|data|about|blob):/.test(u));
  assert(outside.length === 0, 'the report fetched from outside: ' + outside.join(', '));
}

check('diff report: loads with no console errors and nothing fetched', async () => {
  await open(path.join(diffOut, 'report.html'));
  noErrors();
  const title = await page.title();
  assert(title.includes('flamefire diff'), `title: ${title}`);
});

check('diff report: both differentials and both inputs are live inferno documents', async () => {
  for (const id of ['diff', 'diff-negated', 'host-0', 'host-1']) {
    const state = await frameState(await svgFrame(id));
    assert(state.frames > 20, `${id}: ${state.frames} frames`);
    assert(state.search === 'function', `${id}: inferno's search() is ${state.search}`);
  }
});

check('diff report: the HTML parser is the top growth in the changes table', async () => {
  const rows = await page.$$eval('table.changes tr', (trs) =>
    trs.slice(1).map((tr) => [...tr.children].map((td) => td.textContent)),
  );
  assert(rows.length > 0, 'no rows in the changes table');
  const growth = rows.filter((r) => parseFloat(r[3]) > 0);
  assert(/parseHtmlDocument|tokenizeHtml/.test(growth[0][0]), `top growth: ${growth[0]}`);
  const shrink = rows.filter((r) => parseFloat(r[3]) < 0);
  assert(shrink.some((r) => /serveJson/.test(r[0])), `serveJson does not shrink: ${JSON.stringify(rows)}`);
});

check('search: Ctrl-F in a flamegraph asks for a term and highlights tokenizeHtml', async () => {
  const frame = await svgFrame('host-1'); // AFTER: sick
  page.once('dialog', (d) => {
    dialogs.push(d.message());
    d.accept('tokenizeHtml');
  });
  await frame.click('#frames > g:last-child rect', { force: true, position: { x: 2, y: 2 } });
  // the click zoomed; undo it so that every frame is searchable again
  await frame.evaluate(() => unzoom());
  await page.keyboard.press('Control+F');
  await page.waitForTimeout(300);
  assert(dialogs.length === 1, `inferno's prompt did not show (dialogs: ${dialogs.length})`);
  const state = await frameState(frame);
  assert(/^Matched: \d/.test(state.matched), `matched: "${state.matched}"`);
  assert(state.highlighted.length > 0, 'no frame highlighted');
  assert(state.highlighted.every((t) => t.includes('tokenizeHtml')), `highlighted: ${state.highlighted}`);
  noErrors();
});

check('search: search() inside the negated view finds serveJson, zoom works without errors', async () => {
  const frame = await svgFrame('diff-negated');
  await frame.evaluate(() => search('serveJson'));
  const state = await frameState(frame);
  assert(state.highlighted.some((t) => t.includes('serveJson')), `highlighted: ${state.highlighted}`);
  await frame.evaluate(() => reset_search());
  // Zoom records its state with history.replaceState, which throws in a
  // srcdoc document unless the report's shim is there.
  await frame.click('#frames > g:nth-child(3) rect', { force: true });
  await page.waitForTimeout(100);
  noErrors();
});

check('screenshot of the diff report', async () => {
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await open(path.join(diffOut, 'report.html'));
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  assert(fs.statSync(SCREENSHOT).size > 20000, 'screenshot is suspiciously small');
});

check('render report: merged and every input flamegraph, one heat map per timed input', async () => {
  await open(path.join(renderOut, 'report.html'));
  noErrors();
  const ids = await page.$$eval('iframe.flamegraph', (fs) => fs.map((f) => f.id));
  assert(ids.includes('merged'), `ids: ${ids}`);
  const hosts = await page.$$eval('section.host', (s) => s.map((x) => x.dataset.host));
  for (const name of ['sick', 'healthy', 'burst', 'cluster-basic-prof']) {
    assert(hosts.some((h) => h.endsWith(`${name}.perf.gz`)), `no section for ${name}: ${hosts}`);
  }
  for (const id of ids) {
    const state = await frameState(await svgFrame(id));
    assert(state.frames > 5 && state.search === 'function', `${id}: ${JSON.stringify(state)}`);
  }
  const heatmaps = await page.$$eval('svg.heatmap', (s) => s.length);
  assert(heatmaps === 4, `${heatmaps} heat maps for 4 perf inputs (the folded one has no timestamps)`);
});

check('render report: the burst capture shows busy and idle seconds', async () => {
  const totals = await page.$eval(
    'section.host[data-host$="burst.perf.gz"] svg.heatmap',
    (s) => s.dataset.columnTotals.split(' ').map(Number),
  );
  const max = Math.max(...totals);
  const busy = totals.map((t, i) => (t > max / 3 ? i : -1)).filter((i) => i >= 0);
  assert(busy.length === 2 && busy[1] - busy[0] === 3, `busy seconds ${busy} of ${totals}`);
  assert(totals.some((t) => t === 0), `no idle second: ${totals}`);
});

check('render report: a hostile file name is shown as text, not run', async () => {
  assert(dialogs.length === 0, `a dialog opened: ${dialogs}`);
  const injected = await page.$$eval('img', (imgs) => imgs.length);
  assert(injected === 0, `${injected} <img> elements injected`);
  const text = await page.$eval('table.hosts', (t) => t.textContent);
  assert(text.includes('<img src=x onerror=alert(1)>'), 'the hostile name is not shown as text');
});

async function main() {
  const started = Date.now();
  assert(fs.existsSync(BIN), `flamefire binary not found at ${BIN}: run cargo build (or set FLAMEFIRE_BIN)`);
  flamefire([
    'diff', path.join(CAPTURES, 'healthy.perf.gz'), path.join(CAPTURES, 'sick.perf.gz'), '--out', diffOut,
  ]);
  fs.mkdirSync(renderOut, { recursive: true });
  fs.copyFileSync(path.join(REPO, 'tests', 'data', 'expected', 'healthy.folded'), path.join(work, hostileName));
  flamefire([
    'render', '--out', renderOut,
    ...['sick', 'healthy', 'burst', 'cluster-basic-prof'].map((n) => path.join(CAPTURES, `${n}.perf.gz`)),
    path.join(work, hostileName),
  ]);

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'flamefire-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  browser = context;
  page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => messages.push({ type: m.type(), text: m.text() }));
  page.on('pageerror', (e) => messages.push({ type: 'pageerror', text: e.message }));
  page.on('request', (r) => requests.push(r.url()));
  page.on('dialog', (d) => {
    // `check`s that expect a dialog answer it themselves (page.once).
    if (page.listenerCount('dialog') === 1) {
      dialogs.push(d.message());
      d.dismiss();
    }
  });

  let passed = 0;
  let failed = 0;
  for (const { name, fn } of results) {
    try {
      await fn();
      passed += 1;
      console.log(`ok - ${name}`);
    } catch (e) {
      failed += 1;
      console.log(`not ok - ${name}\n  ${String(e && e.stack || e).split('\n').slice(0, 6).join('\n  ')}`);
    }
  }
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
  console.log(`${passed} passed, ${failed} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  async (e) => {
    console.log(`not ok - setup\n  ${e && e.message || e}`);
    if (browser) await browser.close().catch(() => {});
    console.log(`0 passed, ${results.length} failed`);
    process.exit(1);
  },
);

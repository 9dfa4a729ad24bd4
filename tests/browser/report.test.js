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
  for (const id of ['diff', 'diff-negated']) {
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
  const frame = await svgFrame('diff'); // AFTER's shape: sick
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
  // the timed inputs are drawn by the time view; the folded one keeps its SVG
  assert(ids.length === 2, `merged + the folded input: ${ids}`);
  const hosts = await page.$$eval('section.host', (s) => s.map((x) => x.dataset.host));
  for (const name of ['sick', 'healthy', 'burst', 'cluster-basic-prof']) {
    assert(hosts.some((h) => h.endsWith(`${name}.perf.gz`)), `no section for ${name}: ${hosts}`);
  }
  for (const id of ids) {
    const state = await frameState(await svgFrame(id));
    assert(state.frames > 5 && state.search === 'function', `${id}: ${JSON.stringify(state)}`);
  }
  const strips = await page.evaluate(() => JSON.parse(document.getElementById('flamefire-data').textContent).hosts.length);
  assert(strips === 4, `${strips} time lines for 4 perf inputs (the folded one has no timestamps)`);
});

check('render report: the burst capture shows busy and idle seconds', async () => {
  const totals = await page.evaluate(() => {
    const data = JSON.parse(document.getElementById('flamefire-data').textContent);
    const t = data.hosts.find((h) => h.label.endsWith('burst.perf.gz')).t;
    const out = [];
    t.cells.forEach((c, i) => {
      const col = Math.floor(c / data.rows);
      while (out.length <= col) out.push(0);
      for (let e = i ? t.cell_end[i - 1] : 0; e < t.cell_end[i]; e++) out[col] += t.entry_weight[e];
    });
    return out;
  });
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


// ---- the time view (issue 20) ---------------------------------------------

const SICK = path.join(CAPTURES, 'sick.perf.gz');
const scopeOut = path.join(work, 'scope');
const hostileOut = path.join(work, 'hostile');
const DOCS_SCREENSHOT = path.join(REPO, 'docs', 'report-selection.png');
let windows = 0;

// `flamefire render --from --to` of one capture: its folded stacks and SVG
function renderWindow(capture, from, to) {
  const dir = path.join(work, `window-${windows++}`);
  flamefire(['render', '--from', from, '--to', to, '--out', dir, capture]);
  const name = path.basename(capture).replace(/\.gz$/, '').replace(/\.[^.]*$/, '');
  return { folded: path.join(dir, `${name}.folded`), svg: fs.readFileSync(path.join(dir, `${name}.svg`), 'utf8') };
}

function readFolded(file) {
  const out = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const at = line.lastIndexOf(' ');
    out[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return out;
}

// frames of an inferno SVG: name and samples, from each frame's <title>
function svgFrames(svg) {
  const out = [];
  const unescape = (t) => t.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  for (const m of svg.matchAll(/<title>([^<]*) \(([\d,]+) samples?, [\d.]+%\)<\/title>/g)) {
    out.push({ name: unescape(m[1]), value: Number(m[2].replace(/,/g, '')) });
  }
  return out;
}

async function scopeState() {
  return page.$eval('#scope', (s) => ({ ...s.dataset }));
}

// drags on the heat map from cell a to cell b (cells: 50 per second)
async function dragHeat(a, b, shift) {
  const box = await page.$eval('#heat', (el) => {
    const r = el.getBoundingClientRect();
    return { x: r.left, y: r.top, cw: Number(el.dataset.cellWidth) };
  });
  const at = (c) => ({ x: box.x + Math.floor(c / 50) * box.cw + box.cw / 2, y: box.y + (c % 50) * 4 + 2 });
  if (shift) await page.keyboard.down('Shift');
  await page.mouse.move(at(a).x, at(a).y);
  await page.mouse.down();
  await page.mouse.move(at(b).x, at(b).y, { steps: 4 });
  await page.mouse.up();
  if (shift) await page.keyboard.up('Shift');
}

function sameFolded(got, want, what) {
  const keys = new Set([...Object.keys(got), ...Object.keys(want)]);
  const differ = [...keys].filter((k) => got[k] !== want[k]);
  assert(differ.length === 0, `${what}: ${differ.length} stacks differ, e.g. ${JSON.stringify(differ.slice(0, 3).map((k) => [k, got[k], want[k]]))}`);
}

check('time view: the first view is the whole profile, as flamefire render draws it', async () => {
  await open(path.join(scopeOut, 'report.html'));
  noErrors();
  const s = await scopeState();
  assert(s.mode === 'flame' && s.from === '0.00', `state: ${JSON.stringify(s)}`);
  const want = readFolded(path.join(scopeOut, 'sick.folded'));
  sameFolded(await page.evaluate(() => window.flamefire.folded()), want, 'whole profile');
  const total = Object.values(want).reduce((a, b) => a + b, 0);
  assert(Number(s.total) === total, `total ${s.total}, render's ${total}`);
});

check('time view: drag selections draw what flamefire render --from --to draws (3 stretches)', async () => {
  // across columns, inside one column, one cell
  // the first cell from 3 s on that holds samples
  const cell = await page.evaluate(() => JSON.parse(document.getElementById('flamefire-data').textContent).hosts[0].t.cells.find((c) => c >= 150));
  for (const [a, b] of [[60, 176], [130, 112], [cell, cell]]) {
    await dragHeat(a, b, false);
    const s = await scopeState();
    const c0 = Math.min(a, b), c1 = Math.max(a, b) + 1;
    assert(s.from === (c0 / 50).toFixed(2) && s.to === (c1 / 50).toFixed(2), `stretch ${s.from}–${s.to} for cells ${a}..${b}`);
    const r = renderWindow(SICK, s.from, s.to);
    const want = readFolded(r.folded);
    sameFolded(await page.evaluate(() => window.flamefire.folded()), want, `${s.from}–${s.to}`);
    const total = Object.values(want).reduce((x, y) => x + y, 0);
    assert(Number(s.total) === total && total > 0, `${s.from}–${s.to}: total ${s.total}, render's ${total}`);
    // the biggest frames of render's SVG are drawn with the same samples
    const drawn = await page.evaluate(() => window.flamefire.frames());
    const top = svgFrames(r.svg).filter((f) => f.name !== 'all').sort((x, y) => y.value - x.value).slice(0, 10);
    assert(top.length > 0, 'no frames in the SVG');
    for (const f of top) {
      assert(drawn.some((d) => d.name === f.name && d.value === f.value), `${s.from}–${s.to}: ${f.name} (${f.value}) not drawn alike`);
    }
    const info = await page.$eval('#selection', (e) => e.textContent);
    assert(info.includes(`${s.from}–${s.to} s`) && info.includes(`${total} samples`), `caption: ${info}`);
  }
  noErrors();
});

check('time view: hover names the frame, click zooms, search highlights and gives the share', async () => {
  await dragHeat(0, 999, false);
  await page.$eval('#flame', (e) => e.scrollIntoView());
  const box = await page.$eval('#flame', (e) => { const r = e.getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; });
  await page.mouse.move(box.x + box.w / 2, box.y + box.h - 8 - 16);
  const tip = await page.$eval('#tip', (t) => ({ text: t.textContent, hidden: t.hidden }));
  assert(!tip.hidden && /\(\d[\d,]* samples, [\d.]+%\)$/.test(tip.text), `tooltip: ${JSON.stringify(tip)}`);
  await page.mouse.click(box.x + box.w / 2, box.y + box.h - 8 - 16);
  const zoomed = await page.evaluate(() => window.flamefire.frames());
  assert(zoomed[0].name === 'all' && zoomed.length > 2, 'zoom drew nothing');
  await page.click('#unzoom');
  await page.fill('#search', 'tokenizeHtml');
  const m = await page.$eval('#matched', (e) => e.textContent);
  assert(/^Matched: [1-9][\d.]*%/.test(m), `matched: ${m}`);
  const s = await scopeState();
  const want = readFolded(path.join(scopeOut, 'sick.folded'));
  const share = Object.entries(want).filter(([k]) => k.includes('tokenizeHtml')).reduce((a, [, v]) => a + v, 0);
  assert(Number(s.matched) === share, `matched ${s.matched} samples, stacks with tokenizeHtml hold ${share}`);
  await page.fill('#search', '');
  noErrors();
});

check('time view: a second stretch (shift-drag) draws the differential of flamefire diff', async () => {
  await dragHeat(50, 149, false);
  const first = await scopeState();
  await dragHeat(200, 299, true);
  const second = await scopeState();
  assert(second.mode === 'diff', `mode ${second.mode}`);
  const a = renderWindow(SICK, first.from, first.to);
  const b = renderWindow(SICK, second.from, second.to);
  const out = path.join(work, 'stretch-diff');
  flamefire(['diff', a.folded, b.folded, '--out', out]);
  const want = {};
  for (const line of fs.readFileSync(path.join(out, 'diff.folded'), 'utf8').split('\n')) {
    if (!line) continue;
    const [stack, firstN, secondN] = line.split(/ (?=\d+ \d+$)| (?=\d+$)/);
    const names = stack.split(';');
    for (let i = 1; i <= names.length; i++) {
      const p = names.slice(0, i).join(';');
      want[p] = want[p] || [0, 0];
      want[p][0] += Number(secondN);
    }
    want[stack][1] = Number(secondN) - Number(firstN);
  }
  const got = {};
  for (const [p, v, d] of await page.evaluate(() => window.flamefire.lines())) got[p] = [v, d];
  const keys = new Set([...Object.keys(got), ...Object.keys(want)]);
  const differ = [...keys].filter((k) => !got[k] || !want[k] || got[k][0] !== want[k][0] || got[k][1] !== want[k][1]);
  assert(Object.keys(want).length > 10, 'diff.folded is nearly empty');
  assert(differ.length === 0, `${differ.length} frames differ, e.g. ${JSON.stringify(differ.slice(0, 3).map((k) => [k, got[k], want[k]]))}`);
  noErrors();
});

check('time view: arrows move the selection, the address reopens it, Escape resets', async () => {
  await dragHeat(60, 109, false);
  await page.keyboard.press('ArrowRight');
  const moved = await scopeState();
  assert(moved.from === '2.20' && moved.to === '3.20', `after →: ${moved.from}–${moved.to}`);
  const url = page.url();
  assert(url.includes('#sel=0:2.20:3.20'), `url: ${url}`);
  await page.goto('about:blank');
  await open(url.replace(/^file:\/\//, ''));
  const again = await scopeState();
  assert(again.from === '2.20' && again.to === '3.20', `reopened: ${again.from}–${again.to}`);
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: path.join(path.dirname(SCREENSHOT), 'report-selection.png') });
  if (process.env.FLAMEFIRE_DOCS_SCREENSHOT) {
    await page.fill('#search', 'parseHtml');
    await page.screenshot({ path: DOCS_SCREENSHOT, clip: await page.$eval('#scope', (e) => { const r = e.getBoundingClientRect(); return { x: 0, y: r.top + window.scrollY - 40, width: 1400, height: Math.min(r.height + 60, 700) }; }), fullPage: true });
    await page.fill('#search', '');
    await page.focus('#heat');
  }
  await page.keyboard.press('Escape');
  const reset = await scopeState();
  assert(reset.from === '0.00' && reset.mode === 'flame', `after Escape: ${JSON.stringify(reset)}`);
  noErrors();
});

check('time view: hostile frame names are drawn as text and run nothing', async () => {
  await open(path.join(hostileOut, 'report.html'));
  const names = (await page.evaluate(() => window.flamefire.frames())).map((f) => f.name);
  assert(names.some((n) => n.includes('<img src=x onerror=alert(1)>')), `names: ${names}`);
  assert(names.some((n) => n.includes('</script><script>alert')), `names: ${names}`);
  assert(names.some((n) => n.includes('"><svg onload=alert')), `names: ${names}`);
  await page.$eval('#flame', (e) => e.scrollIntoView());
  const box = await page.$eval('#flame', (e) => { const r = e.getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; });
  for (let y = box.h - 24; y > 0; y -= 16) await page.mouse.move(box.x + 20, box.y + y);
  await page.fill('#search', 'script');
  await page.$eval('#heat', (e) => e.scrollIntoView());
  await dragHeat(0, 60, false);
  assert(dialogs.length === 0, `a dialog opened: ${dialogs}`);
  const injected = await page.$$eval('img, script:not(#flamefire-js):not(#flamefire-data)', (e) => e.length);
  assert(injected === 0, `${injected} elements injected`);
  noErrors();
});

check('fleet: one row per host; dragging a row selects that host, the axis the fleet', async () => {
  await open(path.join(renderOut, 'report.html'));
  const hosts = await page.evaluate(() => JSON.parse(document.getElementById('flamefire-data').textContent).hosts.map((h) => h.label));
  const k = hosts.findIndex((h) => h.endsWith('burst.perf.gz'));
  const drag = async (row, b0, b1) => {
    await page.$eval('#fleet', (e) => e.scrollIntoView());
    const g = await page.$eval('#fleet', (el) => {
      const r = el.getBoundingClientRect();
      return { x: r.left, y: r.top, px: Number(el.dataset.px), label: Number(el.dataset.labelWidth), row: Number(el.dataset.rowHeight) };
    });
    const x = (bucket) => g.x + g.label + bucket * g.px + g.px / 2;
    await page.mouse.move(x(b0), g.y + row * g.row + g.row / 2);
    await page.mouse.down();
    await page.mouse.move(x(b1), g.y + row * g.row + g.row / 2, { steps: 4 });
    await page.mouse.up();
  };
  await drag(k, 10, 39); // 1.0–4.0 s
  const s = await scopeState();
  assert(s.host === String(k) && s.from === '1.00' && s.to === '4.00', `state: ${JSON.stringify(s)}`);
  const r = renderWindow(path.join(CAPTURES, 'burst.perf.gz'), s.from, s.to);
  sameFolded(await page.evaluate(() => window.flamefire.folded()), readFolded(r.folded), 'burst 1–4 s');
  const heatHost = await page.$eval('#heat', (e) => e.dataset.host);
  assert(heatHost === String(k), `the heat map shows host ${heatHost}, not ${k}`);
  await drag(hosts.length, 10, 39); // the axis: the whole fleet
  const f = await scopeState();
  assert(f.host === 'all', `axis selects ${f.host}`);
  const roots = new Set(Object.keys(await page.evaluate(() => window.flamefire.folded())).map((st) => st.split(';')[0]));
  assert(roots.size > 1, `fleet roots: ${[...roots]}`);
  noErrors();
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

  flamefire(['render', '--out', scopeOut, SICK]);
  const hostilePerf = path.join(work, 'hostile.perf');
  const frames = ['<img src=x onerror=alert(1)>', '</script><script>alert(2)</script>', '"><svg onload=alert(3)>'];
  let text = '';
  for (let i = 0; i < 120; i++) {
    text += `node 4242 [000] ${(100 + i * 0.01).toFixed(6)}: 10101010 cpu-clock:ppp: \n`;
    text += `\t    7f0000000${i % 3} ${frames[i % 3]}+0x1 (/tmp/perf-4242.map)\n`;
    text += `\t    7f00000010 ${frames[(i + 1) % 3]}+0x2 (/tmp/perf-4242.map)\n`;
    text += '\t          866cc8 node::Start+0x154 (/usr/bin/node)\n\n';
  }
  fs.writeFileSync(hostilePerf, text);
  flamefire(['render', '--out', hostileOut, hostilePerf]);

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

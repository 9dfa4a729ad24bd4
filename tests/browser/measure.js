// Size and speed of report.html's time view (issue 20), for the README:
// file size, first contentful paint, and the time a selection takes to
// redraw, in Debian's headless Chromium. Not a test (no assertion on time):
//
//   tests/browser/run.sh            # once, installs chromium and playwright-core
//   node tests/browser/measure.js   # prints a Markdown table
//
// Inputs: the demo capture (tests/data/captures/sick.perf.gz), a synthetic
// 96-vCPU host (the demo capture's samples repeated with shifted times to
// 285,000 samples over 30 s, each given one of 400 extra leaf frames so that
// there are tens of thousands of distinct stacks, as on a big host), and a
// 50-host fleet (`flamefire render` of 50 copies of the real captures, each
// a host of the report).
'use strict';

const { chromium } = require('playwright-core');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');

const REPO = path.resolve(__dirname, '..', '..');
const CAPTURES = path.join(REPO, 'tests', 'data', 'captures');
const BIN = process.env.FLAMEFIRE_BIN || path.join(REPO, 'target', 'debug', 'flamefire');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'flamefire-measure-'));

function flamefire(args) {
  const run = spawnSync(BIN, args, { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`flamefire ${args.join(' ')}: ${run.stderr}`);
}

// the events of a perf script capture: [time, text after the time]
function events(capture) {
  const text = zlib.gunzipSync(fs.readFileSync(capture)).toString('utf8');
  return text.split('\n\n').filter((e) => /cpu-clock/.test(e)).map((e) => {
    const m = e.match(/^(.*?) (\d+\.\d+): (.*)$/s);
    return m && { head: m[1], rest: m[3] };
  }).filter(Boolean);
}

function synthetic96(out) {
  const base = events(path.join(CAPTURES, 'sick.perf.gz'));
  const samples = 285000;
  const chunks = [];
  let seed = 1;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < samples; i++) {
    const e = base[i % base.length];
    const t = 1000 + (30 * i) / samples;
    const [first, ...frames] = e.rest.split('\n');
    const leaf = `\t    7f00000${(i % 9)} synthetic_${Math.floor(random() * 400)}+0x1 (/tmp/perf-1.map)`;
    chunks.push(`${e.head} ${t.toFixed(6)}: ${first}\n${leaf}\n${frames.join('\n')}\n`);
  }
  fs.writeFileSync(out, zlib.gzipSync(chunks.join('\n')));
}

async function measure(browser, report, selections) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto('file://' + report);
  await page.waitForLoadState('load');
  const fcp = await page.evaluate(() => new Promise((resolve) => {
    new PerformanceObserver((list) => {
      const p = list.getEntries().find((e) => e.name === 'first-contentful-paint');
      if (p) resolve(p.startTime);
    }).observe({ type: 'paint', buffered: true });
    setTimeout(() => resolve(NaN), 5000);
  }));
  const drawn = await page.evaluate(() => window.flamefire.drawnAt);
  const times = [];
  for (const [host, from, to] of selections) {
    // from the selection to the next painted frame
    times.push(await page.evaluate(([h, f, t]) => new Promise((resolve) => {
      const start = performance.now();
      window.flamefire.select(h, f, t);
      requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - start), 0));
    }), [host, from, to]));
  }
  const outside = requests.filter((u) => !/^(file|data|about|blob):/.test(u));
  await page.close();
  const first = times[0];
  const rest = times.slice(1).sort((a, b) => a - b);
  return { size: fs.statSync(report).size, fcp, drawn, first, median: rest[Math.floor(rest.length / 2)], max: rest[rest.length - 1], outside };
}

async function main() {
  const demo = path.join(work, 'demo');
  flamefire(['render', '--out', demo, path.join(CAPTURES, 'sick.perf.gz')]);
  const big = path.join(work, 'host96.perf.gz');
  synthetic96(big);
  const bigOut = path.join(work, 'host96');
  flamefire(['render', '--out', bigOut, big]);
  const fleet = path.join(work, 'fleet-in');
  fs.mkdirSync(fleet);
  const names = ['sick', 'healthy', 'burst', 'cluster-basic-prof', 'no-map'];
  const inputs = [];
  for (let i = 0; i < 50; i++) {
    const f = path.join(fleet, `host-${String(i).padStart(2, '0')}.perf.gz`);
    fs.copyFileSync(path.join(CAPTURES, `${names[i % names.length]}.perf.gz`), f);
    inputs.push(f);
  }
  const fleetOut = path.join(work, 'fleet');
  flamefire(['render', '--out', fleetOut, ...inputs]);

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  // the browser's own start-up is not the page's: load one page first
  await measure(browser, path.join(demo, 'report.html'), []).catch(() => {});
  const stretches = (host, seconds) => Array.from({ length: 9 }, (_, i) => [host, (i * seconds) / 10, (i * seconds) / 10 + seconds / 5]);
  const rows = [
    ['demo capture (sick.perf.gz, 359 samples, 5 s)', await measure(browser, path.join(demo, 'report.html'), stretches(0, 5))],
    ['96-vCPU host (synthetic, 285,000 samples, 30 s)', await measure(browser, path.join(bigOut, 'report.html'), stretches(0, 30))],
    ['50-host fleet (render of 50 captures; selections on the axis)', await measure(browser, path.join(fleetOut, 'report.html'), stretches('all', 5))],
  ];
  await browser.close();
  console.log('| report | size | first paint | time view drawn | first selection | next 8 selections (median / max) |');
  console.log('|---|---|---|---|---|---|');
  for (const [name, r] of rows) {
    console.log(`| ${name} | ${(r.size / 1024).toFixed(0)} KiB | ${r.fcp.toFixed(0)} ms | ${r.drawn.toFixed(0)} ms | ${r.first.toFixed(0)} ms | ${r.median.toFixed(0)} / ${r.max.toFixed(0)} ms |${r.outside.length ? ' FETCHED: ' + r.outside.join(' ') : ''}`);
  }
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((e) => { console.error(e); process.exit(1); });

#!/usr/bin/env node
// flamefire demo: a Node cluster that burns CPU in clearly named functions, so
// that a flamegraph of it has something obvious to show.
//
//   node --perf-basic-prof demo/cluster.js
//
// Environment:
//   FLAMEFIRE_DEMO_WORKERS  number of workers (default 2, 1..64)
//   FLAMEFIRE_DEMO_MODE     sick (default) | healthy | burst
//     sick     workers spend ~all their CPU in parseHtmlDocument -> tokenizeHtml
//     healthy  workers do light serveJson work, ~10% busy, idle otherwise
//     burst    workers idle, with a 1 s 100% burst of tokenizeHtml every 3 s
//              (bursts are aligned to the wall clock, so all workers burst
//              together: good for time-slice heat maps)
//
// No npm dependencies. The primary exits on SIGTERM/SIGINT/SIGHUP and takes
// its workers down with it; workers exit by themselves if the primary dies
// (the cluster IPC channel closes).
'use strict';

const cluster = require('node:cluster');

const MODES = ['sick', 'healthy', 'burst'];

function readConfig() {
  const mode = process.env.FLAMEFIRE_DEMO_MODE || 'sick';
  if (!MODES.includes(mode)) {
    throw new Error(`FLAMEFIRE_DEMO_MODE must be one of ${MODES.join(', ')}, got '${mode}'`);
  }
  const rawWorkers = process.env.FLAMEFIRE_DEMO_WORKERS || '2';
  const workers = Number(rawWorkers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    throw new Error(`FLAMEFIRE_DEMO_WORKERS must be an integer 1..64, got '${rawWorkers}'`);
  }
  return { mode, workers };
}

// ---------------------------------------------------------------------------
// The work: a small but real HTML tokenizer. It is deliberately a single,
// large state machine so that V8 does not inline it into its caller (the
// TurboFan inlining budget is a few hundred bytes of bytecode): the
// flamegraph must show tokenizeHtml under parseHtmlDocument.
// ---------------------------------------------------------------------------

const WORDS = ['flame', 'graph', 'stack', 'frame', 'sample', 'node', 'perf',
  'kernel', 'thread', 'worker', 'cluster', 'profile', 'latency', 'budget'];

// A deterministic pseudo-random generator, so every run builds the same page.
function makeRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

function generateHtmlDocument(sections, seed) {
  const random = makeRandom(seed);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const parts = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
    '<title>flamefire demo</title></head>\n<body class="demo">\n'];
  for (let s = 0; s < sections; s++) {
    parts.push(`<section id="s${s}" data-kind="${pick(WORDS)}">\n<h2>${pick(WORDS)} ${s}</h2>\n`);
    const paragraphs = 2 + Math.floor(random() * 4);
    for (let p = 0; p < paragraphs; p++) {
      parts.push('<p class="text">');
      const words = 10 + Math.floor(random() * 30);
      for (let w = 0; w < words; w++) {
        const word = pick(WORDS);
        if (random() < 0.1) {
          parts.push(`<a href="/${word}/${w}" title='${word} &amp; more'>${word}</a> `);
        } else if (random() < 0.05) {
          parts.push(`<em>${word}</em> `);
        } else {
          parts.push(`${word} `);
        }
      }
      parts.push('&lt;done&gt;</p>\n');
    }
    parts.push('<!-- end of section -->\n<br/><img src="x.png" alt="x">\n</section>\n');
  }
  parts.push('</body></html>\n');
  return parts.join('');
}

function isAsciiLetter(code) {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

function isSpace(code) {
  return code === 32 || code === 9 || code === 10 || code === 13 || code === 12;
}

// Tokenizes HTML into start tags (with attributes), end tags, text, comments
// and doctypes. Roughly the WHATWG tokenizer states, minus error recovery.
// Names, text and values are sliced out of the input by index rather than
// built a character at a time: builtins called per character (toLowerCase,
// string concatenation) run without a frame of their own, and perf's
// frame-pointer unwinding would then charge their time to our caller.
function tokenizeHtml(html) {
  const tokens = [];
  const DATA = 0, TAG_OPEN = 1, END_TAG_OPEN = 2, TAG_NAME = 3, BEFORE_ATTR = 4,
    ATTR_NAME = 5, AFTER_ATTR_NAME = 6, BEFORE_VALUE = 7, VALUE_DQ = 8,
    VALUE_SQ = 9, VALUE_UQ = 10, SELF_CLOSING = 11, MARKUP = 12, COMMENT = 13,
    DOCTYPE = 14, CHAR_REF = 15;
  let state = DATA;
  let start = 0; // where the text, name or value being read began
  let text = '';
  let tag = null;
  let attrName = '';
  let attrValue = '';
  let refStart = 0;
  let returnState = DATA;

  const flushText = (end) => {
    text += html.slice(start, end);
    if (text.length > 0) {
      tokens.push({ type: 'text', value: text });
      text = '';
    }
  };
  const finishAttr = () => {
    if (attrName.length > 0) {
      tag.attrs[attrName] = attrValue;
    }
    attrName = '';
    attrValue = '';
  };
  const emitTag = () => {
    finishAttr();
    tokens.push(tag);
    tag = null;
  };
  const decodeRef = (name) => {
    switch (name) {
      case 'amp': return '&';
      case 'lt': return '<';
      case 'gt': return '>';
      case 'quot': return '"';
      case 'apos': return '\'';
      case 'nbsp': return '\u00a0';
      default: return `&${name};`;
    }
  };

  for (let i = 0; i < html.length; i++) {
    const code = html.charCodeAt(i);
    switch (state) {
      case DATA:
        if (code === 60 /* < */) {
          flushText(i);
          state = TAG_OPEN;
        } else if (code === 38 /* & */) {
          text += html.slice(start, i);
          returnState = DATA;
          refStart = i + 1;
          state = CHAR_REF;
        }
        break;
      case TAG_OPEN:
        if (code === 47 /* / */) {
          state = END_TAG_OPEN;
        } else if (code === 33 /* ! */) {
          start = i + 1;
          state = MARKUP;
        } else if (isAsciiLetter(code)) {
          tag = { type: 'start', name: '', attrs: {}, selfClosing: false };
          start = i;
          state = TAG_NAME;
        } else {
          text = '<';
          start = i;
          i--; // reconsume as text
          state = DATA;
        }
        break;
      case END_TAG_OPEN:
        if (isAsciiLetter(code)) {
          tag = { type: 'end', name: '', attrs: {}, selfClosing: false };
          start = i;
          state = TAG_NAME;
        } else {
          start = i + 1;
          state = DATA;
        }
        break;
      case TAG_NAME:
        if (isSpace(code) || code === 47 || code === 62) {
          tag.name = html.slice(start, i).toLowerCase();
          if (code === 62 /* > */) {
            emitTag();
            start = i + 1;
            state = DATA;
          } else {
            state = code === 47 ? SELF_CLOSING : BEFORE_ATTR;
          }
        }
        break;
      case BEFORE_ATTR:
        if (code === 47) {
          state = SELF_CLOSING;
        } else if (code === 62) {
          emitTag();
          start = i + 1;
          state = DATA;
        } else if (!isSpace(code)) {
          start = i;
          state = ATTR_NAME;
        }
        break;
      case ATTR_NAME:
        if (isSpace(code) || code === 61 /* = */ || code === 62 || code === 47) {
          attrName = html.slice(start, i).toLowerCase();
          if (code === 61) {
            state = BEFORE_VALUE;
          } else if (code === 62) {
            emitTag();
            start = i + 1;
            state = DATA;
          } else if (code === 47) {
            finishAttr();
            state = SELF_CLOSING;
          } else {
            state = AFTER_ATTR_NAME;
          }
        }
        break;
      case AFTER_ATTR_NAME:
        if (code === 61) {
          state = BEFORE_VALUE;
        } else if (code === 62) {
          emitTag();
          start = i + 1;
          state = DATA;
        } else if (!isSpace(code)) {
          finishAttr();
          start = i;
          state = ATTR_NAME;
        }
        break;
      case BEFORE_VALUE:
        if (code === 34 /* " */) {
          start = i + 1;
          state = VALUE_DQ;
        } else if (code === 39 /* ' */) {
          start = i + 1;
          state = VALUE_SQ;
        } else if (code === 62) {
          emitTag();
          start = i + 1;
          state = DATA;
        } else if (!isSpace(code)) {
          start = i;
          state = VALUE_UQ;
        }
        break;
      case VALUE_DQ:
      case VALUE_SQ:
        if (code === (state === VALUE_DQ ? 34 : 39)) {
          attrValue += html.slice(start, i);
          finishAttr();
          state = BEFORE_ATTR;
        } else if (code === 38) {
          attrValue += html.slice(start, i);
          returnState = state;
          refStart = i + 1;
          state = CHAR_REF;
        }
        break;
      case VALUE_UQ:
        if (isSpace(code) || code === 62) {
          attrValue += html.slice(start, i);
          finishAttr();
          if (code === 62) {
            emitTag();
            start = i + 1;
            state = DATA;
          } else {
            state = BEFORE_ATTR;
          }
        }
        break;
      case SELF_CLOSING:
        if (code === 62) {
          tag.selfClosing = true;
          emitTag();
          start = i + 1;
          state = DATA;
        } else {
          state = BEFORE_ATTR;
          i--; // reconsume in BEFORE_ATTR
        }
        break;
      case MARKUP:
        // After "<!": a comment ("--") or a doctype.
        if (i - start === 1 && code === 45 && html.charCodeAt(start) === 45) {
          start = i + 1;
          state = COMMENT;
        } else if (i - start === 6 && html.slice(start, i + 1).toUpperCase() === 'DOCTYPE') {
          start = i + 1;
          state = DOCTYPE;
        } else if (code === 62) {
          tokens.push({ type: 'doctype', value: html.slice(start, i) });
          start = i + 1;
          state = DATA;
        }
        break;
      case COMMENT:
        if (code === 62 && i - start >= 2 && html.charCodeAt(i - 1) === 45 && html.charCodeAt(i - 2) === 45) {
          tokens.push({ type: 'comment', value: html.slice(start, i - 2) });
          start = i + 1;
          state = DATA;
        }
        break;
      case DOCTYPE:
        if (code === 62) {
          tokens.push({ type: 'doctype', value: html.slice(start, i).trim() });
          start = i + 1;
          state = DATA;
        }
        break;
      case CHAR_REF:
        if (code === 59 /* ; */ || !isAsciiLetter(code) || i - refStart >= 8) {
          const done = code === 59;
          const decoded = done ? decodeRef(html.slice(refStart, i)) : '&' + html.slice(refStart, i);
          if (returnState === DATA) text += decoded; else attrValue += decoded;
          state = returnState;
          start = done ? i + 1 : i;
          if (!done) i--; // reconsume
        }
        break;
      default:
        throw new Error(`tokenizer reached unknown state ${state}`);
    }
  }
  if (state === CHAR_REF && returnState === DATA) {
    text += '&' + html.slice(refStart);
    start = html.length;
    state = DATA;
  }
  if (state === DATA) flushText(html.length);
  return tokens;
}

const VOID_ELEMENTS = new Set(['br', 'img', 'meta', 'input', 'hr', 'link']);

// Builds a DOM-ish tree from the tokens and returns some statistics about it.
// (Its bytecode must stay above V8's inlining limit of 460 bytes, so that it
// keeps its own frame above tokenizeHtml.)
function parseHtmlDocument(html) {
  const tokens = tokenizeHtml(html);
  const root = { name: '#document', children: [] };
  const stack = [root];
  let elements = 0;
  let links = 0;
  let maxDepth = 0;
  let textBytes = 0;
  const ids = new Set();
  for (const token of tokens) {
    const parent = stack[stack.length - 1];
    if (token.type === 'start') {
      const node = { name: token.name, attrs: token.attrs, children: [] };
      parent.children.push(node);
      elements++;
      if (token.name === 'a' && token.attrs.href) links++;
      if (token.attrs.id) ids.add(token.attrs.id);
      if (!token.selfClosing && !VOID_ELEMENTS.has(token.name)) {
        stack.push(node);
        if (stack.length > maxDepth) maxDepth = stack.length;
      }
    } else if (token.type === 'end') {
      for (let d = stack.length - 1; d > 0; d--) {
        if (stack[d].name === token.name) {
          stack.length = d;
          break;
        }
      }
    } else if (token.type === 'text') {
      parent.children.push(token.value);
      textBytes += token.value.length;
    }
  }
  return { tokens: tokens.length, elements, links, maxDepth, textBytes, ids: ids.size };
}

// ---------------------------------------------------------------------------
// The healthy work: small JSON responses.
// ---------------------------------------------------------------------------

let requestCounter = 0;

const ROUTES = ['/api/orders', '/api/cart', '/api/user', '/healthz'];

// Handles one fake API request: routes it, builds the response body,
// serializes it and computes an ETag over the bytes. Deliberately more than
// a one-liner, so that V8 keeps it as its own frame instead of inlining it.
function serveJson() {
  requestCounter++;
  const path = ROUTES[requestCounter % ROUTES.length];
  let status = 200;
  let body;
  if (path === '/healthz') {
    body = { status: 'ok', uptime_s: Math.round(process.uptime()) };
  } else if (path === '/api/user') {
    body = { id: requestCounter % 1000, name: `user-${requestCounter % 1000}`, roles: ['reader'] };
  } else {
    const items = [];
    const count = 1 + (requestCounter % 4);
    for (let i = 0; i < count; i++) {
      items.push({ sku: `sku-${(requestCounter + i) % 97}`, qty: 1 + (i % 3), price: 9.99 + i });
    }
    let total = 0;
    for (const item of items) total += item.qty * item.price;
    body = { id: requestCounter, path, items, total: Math.round(total * 100) / 100,
      tags: ['demo', 'flamefire', requestCounter % 2 === 0 ? 'even' : 'odd'] };
    if (total > 100) status = 202;
  }
  const text = JSON.stringify(body);
  // FNV-1a over the UTF-16 code units: a cheap, stable ETag.
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  const headers = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(text.length),
    etag: `"${hash.toString(16)}"`,
    'cache-control': status === 200 ? 'max-age=5' : 'no-store',
  };
  return status + text.length + headers.etag.length;
}

// ---------------------------------------------------------------------------
// Worker loops. Each one yields to the event loop regularly, so that signals
// and the cluster IPC channel are still serviced.
// ---------------------------------------------------------------------------

function runSick() {
  const page = generateHtmlDocument(60, process.pid);
  let sink = 0;
  const loop = () => {
    const until = Date.now() + 50;
    while (Date.now() < until) {
      sink += parseHtmlDocument(page).elements;
    }
    setImmediate(loop);
  };
  loop();
  return () => sink;
}

function runHealthy() {
  let sink = 0;
  // ~10% busy: 10 ms of work every 100 ms.
  const loop = () => {
    const until = Date.now() + 10;
    while (Date.now() < until) {
      sink += serveJson();
    }
    setTimeout(loop, 90);
  };
  loop();
  return () => sink;
}

function runBurst() {
  const page = generateHtmlDocument(60, process.pid);
  const PERIOD_MS = 3000;
  const BURST_MS = 1000;
  let sink = 0;
  const burst = () => {
    const until = Date.now() + BURST_MS;
    while (Date.now() < until) {
      sink += tokenizeHtml(page).length;
    }
    schedule();
  };
  const schedule = () => {
    const now = Date.now();
    const next = Math.ceil((now + 1) / PERIOD_MS) * PERIOD_MS;
    setTimeout(burst, next - now);
  };
  schedule();
  return () => sink;
}

function runWorker(config) {
  process.title = 'flamefire-demo-worker';
  const loops = { sick: runSick, healthy: runHealthy, burst: runBurst };
  loops[config.mode]();
}

// ---------------------------------------------------------------------------
// Primary: forks the workers and takes them down when it is told to stop.
// ---------------------------------------------------------------------------

function runPrimary(config) {
  process.title = 'flamefire-demo-primary';
  let stopping = false;
  for (let n = 0; n < config.workers; n++) {
    cluster.fork();
  }
  cluster.on('online', (worker) => {
    console.log(`flamefire-demo: worker ${worker.process.pid} online (mode ${config.mode})`);
  });
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`flamefire-demo: worker ${worker.process.pid} exited (${signal || code})`);
    }
    if (Object.keys(cluster.workers).length === 0) {
      process.exit(stopping ? 0 : 1);
    }
  });
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    console.log(`flamefire-demo: ${signal}, stopping ${config.workers} worker(s)`);
    for (const worker of Object.values(cluster.workers)) {
      worker.process.kill('SIGTERM');
    }
    // Workers burn CPU in long synchronous slices; SIGKILL any straggler.
    setTimeout(() => {
      for (const worker of Object.values(cluster.workers)) {
        worker.process.kill('SIGKILL');
      }
      process.exit(0);
    }, 2000).unref();
  };
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    process.on(signal, () => stop(signal));
  }
  console.log(`flamefire-demo: primary ${process.pid}, ${config.workers} worker(s), mode ${config.mode}`);
}

function main() {
  let config;
  try {
    config = readConfig();
  } catch (err) {
    console.error(`flamefire-demo: ${err.message}`);
    process.exit(2);
  }
  if (cluster.isPrimary) {
    runPrimary(config);
  } else {
    runWorker(config);
  }
}

if (require.main === module) {
  main();
}

module.exports = { tokenizeHtml, parseHtmlDocument, generateHtmlDocument, serveJson };

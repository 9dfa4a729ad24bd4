// report.html's time view (issue 20): pick a stretch of time on a heat map,
// see the flamegraph of exactly those samples; pick a second stretch to see
// the differential of the second against the first. No server, no network:
// everything comes from the JSON in the element #flamefire-data.
//
// Host text (frame names, host names) only ever reaches the page through
// textContent, canvas fillText or JSON: never as markup.
(function () {
  'use strict';
  var source = document.getElementById('flamefire-data');
  if (!source) return;
  var DATA = JSON.parse(source.textContent);
  var HOSTS = DATA.hosts;
  if (!HOSTS.length) return;
  var ROWS = DATA.rows; // cells per second
  var FRAME_H = 16;
  var CELL_H = 4;
  var STRIP_H = 12;
  var LABEL_W = 170;

  function $(id) { return document.getElementById(id); }
  var scope = $('scope');
  var heat = $('heat');
  var fleet = $('fleet');
  var flame = $('flame');
  var tip = $('tip');
  var info = $('selection');
  var matched = $('matched');
  var searchBox = $('search');
  var compareBox = $('compare');

  // ---- per-host data, prepared once ------------------------------------
  HOSTS.forEach(function (h) {
    var t = h.t;
    var n = t.parent.length + 1;
    var parent = new Int32Array(n);
    var frame = new Int32Array(n);
    parent[0] = -1;
    frame[0] = -1;
    var kidsCount = new Int32Array(n);
    for (var i = 1; i < n; i++) {
      parent[i] = t.parent[i - 1];
      frame[i] = t.frame[i - 1];
      kidsCount[parent[i]]++;
    }
    // children of each node, sorted as inferno draws sorted folded lines
    var start = new Int32Array(n + 1);
    for (i = 0; i < n; i++) start[i + 1] = start[i] + kidsCount[i];
    var fill = start.slice(0, n);
    var kids = new Int32Array(n > 0 ? n - 1 : 0);
    for (i = 1; i < n; i++) kids[fill[parent[i]]++] = i;
    var key = function (node) { return t.frames[frame[node]] + ';'; };
    for (i = 0; i < n; i++) {
      if (kidsCount[i] > 1) {
        var part = Array.prototype.slice.call(kids, start[i], start[i + 1]);
        part.sort(function (a, b) { var x = key(a), y = key(b); return x < y ? -1 : x > y ? 1 : 0; });
        kids.set(part, start[i]);
      }
    }
    h.n = n;
    h.parent = parent;
    h.frame = frame;
    h.kidStart = start;
    h.kids = kids;
    h.stackNode = Int32Array.from(t.stacks);
    h.cells = Int32Array.from(t.cells);
    h.cellEnd = Int32Array.from(t.cell_end);
    h.entryStack = Int32Array.from(t.entry_stack);
    h.entryWeight = Float64Array.from(t.entry_weight);
    var columns = 1;
    if (h.cells.length) columns = Math.floor(h.cells[h.cells.length - 1] / ROWS) + 1;
    h.columns = columns;
    h.grid = new Float64Array(columns * ROWS);
    var prev = 0;
    for (i = 0; i < h.cells.length; i++) {
      var sum = 0;
      for (var e = prev; e < h.cellEnd[i]; e++) sum += h.entryWeight[e];
      h.grid[h.cells[i]] = sum;
      prev = h.cellEnd[i];
    }
    h.max = Math.max.apply(null, Array.prototype.slice.call(h.grid).concat([1]));
  });
  var COLUMNS = Math.max.apply(null, HOSTS.map(function (h) { return h.columns; }));
  var ALL = -1; // the fleet: every embedded host

  // ---- selections ------------------------------------------------------
  // {host, c0, c1}: cells [c0, c1) of one host (or ALL), c = ns / 20 ms
  function whole(host) { return { host: host, c0: 0, c1: COLUMNS * ROWS }; }
  var state = { sel: whole(0), base: null, zoom: null, search: '', host: 0 };
  if (HOSTS.length > 1) state.sel = whole(ALL);

  function hostName(i) { return i === ALL ? 'all ' + HOSTS.length + ' hosts' : HOSTS[i].label; }
  function secs(c) { return (c / ROWS).toFixed(2); }

  // weights per stack of host h in cells [c0, c1)
  function stackWeights(h, c0, c1) {
    var w = new Float64Array(h.stackNode.length);
    var lo = 0, hi = h.cells.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (h.cells[mid] < c0) lo = mid + 1; else hi = mid; }
    for (var i = lo; i < h.cells.length && h.cells[i] < c1; i++) {
      for (var e = i === 0 ? 0 : h.cellEnd[i - 1]; e < h.cellEnd[i]; e++) {
        w[h.entryStack[e]] += h.entryWeight[e];
      }
    }
    return w;
  }

  // the tree of a selection of one host, as objects {n, v, d, k}, leaving
  // out nodes under `minV` (narrower than a fraction of a pixel)
  function hostTree(h, w, minFraction) {
    var v = new Float64Array(h.n);
    for (var s = 0; s < w.length; s++) if (w[s]) v[h.stackNode[s]] += w[s];
    for (var i = h.n - 1; i > 0; i--) if (v[i]) v[h.parent[i]] += v[i];
    var minV = v[0] * minFraction;
    function build(node) {
      var o = { n: node === 0 ? 'all' : h.t.frames[h.frame[node]], v: v[node], d: null, k: [] };
      for (var j = h.kidStart[node]; j < h.kidStart[node + 1]; j++) {
        var c = h.kids[j];
        if (v[c] > 0 && v[c] >= minV) o.k.push(build(c));
      }
      return o;
    }
    return build(0);
  }

  function stackText(h, s) {
    if (!h.stackText) h.stackText = [];
    var text = h.stackText[s];
    if (text === undefined) {
      var names = [];
      for (var node = h.stackNode[s]; node > 0; node = h.parent[node]) names.push(h.t.frames[h.frame[node]]);
      text = h.stackText[s] = names.reverse().join(';');
    }
    return text;
  }

  // a selection as folded stacks: Map stack → weight (the fleet puts each
  // host's stacks under a root frame named after it, as merged.svg does)
  function folded(sel) {
    var out = new Map();
    var hosts = sel.host === ALL ? HOSTS.map(function (_, i) { return i; }) : [sel.host];
    hosts.forEach(function (i) {
      var h = HOSTS[i];
      var w = stackWeights(h, sel.c0, sel.c1);
      var root = sel.host === ALL ? h.root.replace(/[;\n\r]/g, '_') + ';' : '';
      for (var s = 0; s < w.length; s++) if (w[s]) out.set(root + stackText(h, s), w[s]);
    });
    return out;
  }

  function treeOfStacks(lines) {
    // lines: [stack, first, second]; widths from second, colour from the
    // delta of the line that ends at a frame (inferno's differential)
    var root = { n: 'all', v: 0, d: null, k: [], m: new Map() };
    var dmax = 1;
    lines.forEach(function (l) {
      var node = root;
      node.v += l[2];
      var names = l[0].split(';');
      for (var i = 0; i < names.length; i++) {
        var next = node.m.get(names[i]);
        if (!next) {
          next = { n: names[i], v: 0, d: 0, k: [], m: new Map() };
          node.m.set(names[i], next);
          node.k.push(next);
        }
        next.v += l[2];
        node = next;
      }
      if (l[1] !== null) {
        node.d = l[2] - l[1];
        dmax = Math.max(dmax, Math.abs(node.d));
      }
    });
    (function sort(o) {
      delete o.m;
      o.k.sort(function (a, b) { var x = a.n + ';', y = b.n + ';'; return x < y ? -1 : x > y ? 1 : 0; });
      o.k.forEach(sort);
    })(root);
    root.dmax = dmax;
    return root;
  }

  // ---- what is drawn -----------------------------------------------------
  var view = null; // {tree, total, diff, title}

  function compute() {
    var sel = state.sel;
    var started = performance.now();
    if (state.base) {
      var first = folded(state.base);
      var second = folded(sel);
      var t1 = 0, t2 = 0;
      first.forEach(function (c) { t1 += c; });
      second.forEach(function (c) { t2 += c; });
      var normalize = t1 > 0 && t2 > 0 && t1 !== t2;
      var keys = new Set();
      first.forEach(function (_, k) { keys.add(k); });
      second.forEach(function (_, k) { keys.add(k); });
      var lines = [];
      keys.forEach(function (k) {
        var a = first.get(k) || 0;
        if (normalize) a = Math.floor(a * t2 / t1);
        lines.push([k, a, second.get(k) || 0]);
      });
      lines.sort(function (x, y) { return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0; });
      var tree = treeOfStacks(lines);
      view = { tree: tree, total: t2, diff: true, baseTotal: t1, dmax: tree.dmax };
    } else if (sel.host === ALL) {
      var root = { n: 'all', v: 0, d: null, k: [] };
      HOSTS.map(function (h, i) { return [h, i]; })
        .sort(function (a, b) { return a[0].root < b[0].root ? -1 : a[0].root > b[0].root ? 1 : 0; })
        .forEach(function (p) {
          // a host's frames under a millionth of the fleet are under a pixel
          var t = hostTree(p[0], stackWeights(p[0], sel.c0, sel.c1), 0.0001 / HOSTS.length);
          if (!t.v) return;
          t.n = p[0].root;
          root.v += t.v;
          root.k.push(t);
        });
      view = { tree: root, total: root.v, diff: false };
    } else {
      var h = HOSTS[sel.host];
      var tree1 = hostTree(h, stackWeights(h, sel.c0, sel.c1), 0.0001 / 100);
      view = { tree: tree1, total: tree1.v, diff: false };
    }
    view.computeMs = performance.now() - started;
  }

  function describe(sel) {
    var h = sel.host === ALL ? null : HOSTS[sel.host];
    var end = Math.min(sel.c1, (h ? h.columns : COLUMNS) * ROWS);
    return hostName(sel.host) + ', ' + secs(sel.c0) + '–' + secs(end) + ' s';
  }

  // ---- colours (inferno's js palette, approximately; diff: inferno's) ----
  function hash(name) {
    var v = 0, max = 1, weight = 1;
    for (var i = 0; i < name.length && i < 8; i++) {
      v += weight * (name.charCodeAt(i) % 10);
      max += weight * 9;
      weight *= 0.7;
    }
    return max ? v / max : 0;
  }
  function colour(name) {
    var v = hash(name);
    if (/_\[k\]$/.test(name)) return rgb(205 + 50 * v, 140 * v + 50, 0); // kernel: orange
    if (/_\[j\]$|^JS:|\.js[:)]|^LazyCompile|^Builtin/.test(name)) return rgb(50 + 100 * v, 180 + 70 * v, 50 + 50 * v); // JS: green
    if (/_\[i\]$/.test(name)) return rgb(80 + 60 * v, 190 + 50 * v, 190 + 50 * v);
    if (/::/.test(name)) return rgb(175 + 55 * v, 175 + 55 * v, 50 + 20 * v); // C++: yellow
    return rgb(200 + 55 * v, 50 + 80 * v, 50 + 80 * v); // other: red
  }
  function rgb(r, g, b) { return 'rgb(' + Math.round(r) + ',' + Math.round(g) + ',' + Math.round(b) + ')'; }
  function diffColour(d, max) {
    // inferno's color_scale(delta, delta_max), integer arithmetic
    if (d === 0) return 'rgb(250,250,250)';
    var c;
    if (d > 0) { c = 100 + Math.trunc(150 * (max - d) / max); return rgb(255, c, c); }
    c = 100 + Math.trunc(150 * (max + d) / max);
    return rgb(c, c, 255);
  }

  // ---- the flamegraph ----------------------------------------------------
  var boxes = []; // drawn frames: {x, y, w, node, depth}
  var searchRe = null;

  function matches(name) {
    return searchRe !== null && searchRe.test(name);
  }

  function draw() {
    var width = flame.parentNode.clientWidth || 1000;
    var tree = view.tree;
    // the zoomed frame: a path of names from the root
    var path = [tree];
    if (state.zoom) {
      for (var i = 0; i < state.zoom.length; i++) {
        var next = path[path.length - 1].k.filter(function (c) { return c.n === state.zoom[i]; })[0];
        if (!next) break;
        path.push(next);
      }
    }
    var focus = path[path.length - 1];
    var scale = focus.v > 0 ? width / focus.v : 0;
    boxes = [];
    var depth = 0;
    path.forEach(function (node, d) {
      boxes.push({ x: 0, w: width, node: node, depth: d, above: d < path.length - 1 });
      depth = d;
    });
    var maxDepth = depth;
    (function walk(node, x, d) {
      var cx = x;
      for (var j = 0; j < node.k.length; j++) {
        var c = node.k[j];
        var w = c.v * scale;
        if (w >= 0.3) {
          boxes.push({ x: cx, w: w, node: c, depth: d });
          if (d > maxDepth) maxDepth = d;
          walk(c, cx, d + 1);
        }
        cx += w;
      }
    })(focus, 0, path.length);
    var height = (maxDepth + 2) * FRAME_H;
    var ratio = window.devicePixelRatio || 1;
    flame.width = Math.round(width * ratio);
    flame.height = Math.round(height * ratio);
    flame.style.width = width + 'px';
    flame.style.height = height + 'px';
    var g = flame.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = '11px Verdana, sans-serif';
    g.textBaseline = 'middle';
    var matchedV = 0;
    var matchedRanges = [];
    boxes.forEach(function (b) {
      b.y = height - (b.depth + 1) * FRAME_H;
      var node = b.node;
      var hit = matches(node.n);
      if (hit && !b.above) matchedRanges.push([b.x, b.x + b.w, node.v]);
      g.fillStyle = hit ? 'rgb(230,0,230)' : b.above ? 'rgb(220,220,220)' :
        view.diff ? diffColour(node.d || 0, view.dmax) : colour(node.n);
      g.fillRect(b.x, b.y, Math.max(b.w - 0.5, 0.5), FRAME_H - 1);
      if (b.w > 30) {
        var label = fit(g, node.n, b.w - 6);
        if (label) {
          g.fillStyle = '#000';
          g.fillText(label, b.x + 3, b.y + FRAME_H / 2);
        }
      }
    });
    // share of samples in matched frames, each sample once (nested matches
    // are inside their ancestor's range)
    matchedRanges.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });
    var end = -1;
    matchedRanges.forEach(function (r) { if (r[0] >= end - 1e-9) { matchedV += r[2]; end = r[1]; } });
    if (searchRe !== null) {
      matched.textContent = 'Matched: ' + (focus.v ? (100 * matchedV / focus.v).toFixed(1) : '0.0') + '% (' + fmt(matchedV) + ' of ' + fmt(focus.v) + ')';
    } else {
      matched.textContent = '';
    }
    scope.dataset.total = String(view.total);
    scope.dataset.matched = String(matchedV);
  }

  function fit(g, text, w) {
    if (g.measureText(text).width <= w) return text;
    var chars = Math.floor(w / 7);
    if (chars < 3) return '';
    return text.slice(0, chars - 2) + '..';
  }
  function fmt(v) { return Math.round(v).toLocaleString('en-US'); }

  function boxAt(ev) {
    var r = flame.getBoundingClientRect();
    var x = ev.clientX - r.left, y = ev.clientY - r.top;
    for (var i = boxes.length - 1; i >= 0; i--) {
      var b = boxes[i];
      if (x >= b.x && x < b.x + b.w && y >= b.y && y < b.y + FRAME_H) return b;
    }
    return null;
  }

  function pathOf(b) {
    // names from the root to box b, found again by walking the tree
    var names = [];
    (function find(node, trail) {
      if (node === b.node) { names = trail.slice(); return true; }
      for (var i = 0; i < node.k.length; i++) {
        if (find(node.k[i], trail.concat([node.k[i].n]))) return true;
      }
      return false;
    })(view.tree, []);
    return names;
  }

  flame.addEventListener('mousemove', function (ev) {
    var b = boxAt(ev);
    if (!b) { tip.hidden = true; return; }
    var node = b.node;
    var total = view.tree.v || 1;
    var text = node.n + ' (' + fmt(node.v) + ' ' + DATA.unit + ', ' + (100 * node.v / total).toFixed(2) + '%';
    if (view.diff && node.d !== null) text += '; ' + (node.d >= 0 ? '+' : '') + (100 * node.d / total).toFixed(2) + '%';
    tip.textContent = text + ')';
    tip.hidden = false;
    var r = flame.parentNode.getBoundingClientRect();
    tip.style.left = Math.min(ev.clientX - r.left + 12, r.width - 300) + 'px';
    tip.style.top = (ev.clientY - r.top + 14) + 'px';
  });
  flame.addEventListener('mouseleave', function () { tip.hidden = true; });
  flame.addEventListener('click', function (ev) {
    var b = boxAt(ev);
    if (!b) return;
    state.zoom = b.node === view.tree ? null : pathOf(b);
    draw();
  });

  // ---- heat maps ---------------------------------------------------------
  function heatColour(count, max) {
    var t = max ? Math.min(count / max, 1) : 0;
    return rgb(255 + (165 - 255) * t, 237 + (15 - 237) * t, 160 + (21 - 160) * t);
  }
  function cellW(columns) { return Math.max(2, Math.min(40, Math.floor(560 / Math.max(columns, 1)))); }

  function drawHeat() {
    var h = HOSTS[state.host];
    var cw = cellW(h.columns);
    var width = h.columns * cw, height = ROWS * CELL_H + 14;
    heat.width = width;
    heat.height = height;
    heat.dataset.host = String(state.host);
    heat.dataset.cellWidth = String(cw);
    var g = heat.getContext('2d');
    g.fillStyle = '#f3f3f3';
    g.fillRect(0, 0, width, ROWS * CELL_H);
    for (var c = 0; c < h.grid.length; c++) {
      if (!h.grid[c]) continue;
      g.fillStyle = heatColour(h.grid[c], h.max);
      g.fillRect(Math.floor(c / ROWS) * cw, (c % ROWS) * CELL_H, cw, CELL_H);
    }
    var mark = function (sel, style) {
      if (!sel || (sel.host !== state.host && sel.host !== ALL)) return;
      g.fillStyle = style;
      for (var c = sel.c0; c < Math.min(sel.c1, h.columns * ROWS); c++) {
        g.fillRect(Math.floor(c / ROWS) * cw, (c % ROWS) * CELL_H, cw, CELL_H);
      }
    };
    if (!isWhole(state.sel)) mark(state.sel, 'rgba(30,90,220,0.45)');
    if (state.base && !isWhole(state.base)) mark(state.base, 'rgba(20,160,60,0.45)');
    g.fillStyle = '#555';
    g.font = '10px sans-serif';
    g.textBaseline = 'alphabetic';
    var step = Math.max(1, Math.ceil(40 / cw));
    for (var s = 0; s < h.columns; s += step) g.fillText(s + 's', s * cw, height - 3);
    $('heat-title').textContent = h.label + ': one column per second, ' + ROWS + ' rows of ' + (1000 / ROWS) + ' ms from the top; darker = more ' + DATA.unit + ' (max ' + fmt(h.max) + ' in a cell)';
  }

  function isWhole(sel) { return sel.c0 === 0 && sel.c1 >= COLUMNS * ROWS; }

  var STRIP_CELLS = 5; // one fleet-strip pixel column: 100 ms
  function stripW() { return Math.max(1, Math.floor(700 / Math.ceil(COLUMNS * ROWS / STRIP_CELLS))); }

  function drawFleet() {
    if (!fleet) return;
    var px = stripW();
    var buckets = Math.ceil(COLUMNS * ROWS / STRIP_CELLS);
    var width = LABEL_W + buckets * px, height = (HOSTS.length + 1) * STRIP_H + 14;
    fleet.width = width;
    fleet.height = height;
    fleet.dataset.px = String(px);
    fleet.dataset.labelWidth = String(LABEL_W);
    fleet.dataset.rowHeight = String(STRIP_H);
    var g = fleet.getContext('2d');
    g.clearRect(0, 0, width, height);
    g.font = '10px sans-serif';
    g.textBaseline = 'middle';
    var all = new Float64Array(buckets);
    var sums = HOSTS.map(function (h) {
      var b = new Float64Array(buckets);
      for (var c = 0; c < h.grid.length; c++) { b[Math.floor(c / STRIP_CELLS)] += h.grid[c]; all[Math.floor(c / STRIP_CELLS)] += h.grid[c]; }
      return b;
    });
    var max = 1;
    sums.forEach(function (b) { for (var i = 0; i < b.length; i++) max = Math.max(max, b[i]); });
    var allMax = Math.max.apply(null, Array.prototype.slice.call(all).concat([1]));
    var row = function (y, label, b, m, selected) {
      g.fillStyle = selected ? '#dde6ff' : '#f3f3f3';
      g.fillRect(0, y, width, STRIP_H - 1);
      g.fillStyle = '#222';
      g.fillText(fitText(g, label, LABEL_W - 6), 2, y + STRIP_H / 2);
      for (var i = 0; i < b.length; i++) {
        if (!b[i]) continue;
        g.fillStyle = heatColour(b[i], m);
        g.fillRect(LABEL_W + i * px, y, px, STRIP_H - 1);
      }
    };
    sums.forEach(function (b, i) { row(i * STRIP_H, HOSTS[i].label, b, max, i === state.host); });
    row(HOSTS.length * STRIP_H, 'all hosts (time axis)', all, allMax, false);
    var mark = function (sel, style) {
      if (!sel || isWhole(sel)) return;
      var y0 = sel.host === ALL ? 0 : sel.host * STRIP_H;
      var y1 = sel.host === ALL ? (HOSTS.length + 1) * STRIP_H : y0 + STRIP_H;
      g.fillStyle = style;
      g.fillRect(LABEL_W + sel.c0 / STRIP_CELLS * px, y0, (sel.c1 - sel.c0) / STRIP_CELLS * px, y1 - y0);
    };
    mark(state.sel, 'rgba(30,90,220,0.4)');
    mark(state.base, 'rgba(20,160,60,0.4)');
    g.fillStyle = '#555';
    g.textBaseline = 'alphabetic';
    var step = Math.max(1, Math.ceil(40 / (px * ROWS / STRIP_CELLS)));
    for (var s = 0; s < COLUMNS; s += step) g.fillText(s + 's', LABEL_W + s * ROWS / STRIP_CELLS * px, height - 3);
  }
  function fitText(g, text, w) {
    if (g.measureText(text).width <= w) return text;
    return text.slice(0, Math.max(1, Math.floor(w / 6) - 1)) + '…';
  }

  // cell under the mouse on the heat map; null outside
  function heatCell(ev) {
    var r = heat.getBoundingClientRect();
    var cw = cellW(HOSTS[state.host].columns);
    var col = Math.floor((ev.clientX - r.left) / cw), row = Math.floor((ev.clientY - r.top) / CELL_H);
    col = Math.max(0, Math.min(HOSTS[state.host].columns - 1, col));
    row = Math.max(0, Math.min(ROWS - 1, row));
    return col * ROWS + row;
  }
  // the fleet strip: {host, cell}
  function stripPoint(ev) {
    var r = fleet.getBoundingClientRect();
    var px = stripW();
    var bucket = Math.floor((ev.clientX - r.left - LABEL_W) / px);
    bucket = Math.max(0, Math.min(Math.ceil(COLUMNS * ROWS / STRIP_CELLS) - 1, bucket));
    var row = Math.floor((ev.clientY - r.top) / STRIP_H);
    return { host: row >= HOSTS.length ? ALL : Math.max(0, row), cell: bucket * STRIP_CELLS, label: ev.clientX - r.left < LABEL_W };
  }

  var drag = null;
  function select(sel, compare) {
    if (compare) {
      if (!state.base) state.base = state.sel;
    } else {
      state.base = null;
    }
    state.sel = sel;
    state.zoom = null;
    if (sel.host !== ALL) state.host = sel.host;
    update(true);
  }

  heat.addEventListener('mousedown', function (ev) {
    ev.preventDefault();
    heat.focus({ preventScroll: true }); // arrows and Escape act on the selection, not the search box
    drag = { where: 'heat', a: heatCell(ev), compare: ev.shiftKey || compareBox.checked };
  });
  if (fleet) {
    fleet.addEventListener('mousedown', function (ev) {
      ev.preventDefault();
      heat.focus({ preventScroll: true });
      var p = stripPoint(ev);
      if (p.label && p.host !== ALL) { select(whole(p.host), ev.shiftKey || compareBox.checked); return; }
      drag = { where: 'fleet', host: p.host, a: p.cell, compare: ev.shiftKey || compareBox.checked };
    });
  }
  window.addEventListener('mouseup', function (ev) {
    if (!drag) return;
    var d = drag;
    drag = null;
    if (d.where === 'heat') {
      var b = heatCell(ev);
      select({ host: state.host, c0: Math.min(d.a, b), c1: Math.max(d.a, b) + 1 }, d.compare);
    } else {
      var p = stripPoint(ev);
      select({ host: d.host, c0: Math.min(d.a, p.cell), c1: Math.max(d.a, p.cell) + STRIP_CELLS }, d.compare);
    }
  });

  // ---- the rest of the controls -------------------------------------------
  searchBox.addEventListener('input', function () {
    var text = searchBox.value;
    if (!text) searchRe = null;
    else {
      try { searchRe = new RegExp(text); } catch (e) { searchRe = new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')); }
    }
    state.search = text;
    draw();
  });
  $('reset').addEventListener('click', reset);
  $('unzoom').addEventListener('click', function () { state.zoom = null; draw(); });
  $('save').addEventListener('click', function () {
    var text = '';
    var m = folded(state.sel);
    Array.from(m.keys()).sort().forEach(function (k) { text += k + ' ' + m.get(k) + '\n'; });
    var a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
    a.download = 'selection.folded';
    a.click();
  });

  function reset() {
    state.base = null;
    state.zoom = null;
    state.sel = HOSTS.length > 1 ? whole(ALL) : whole(0);
    searchBox.value = '';
    searchRe = null;
    compareBox.checked = false;
    update(true);
  }

  document.addEventListener('keydown', function (ev) {
    if (ev.target === searchBox) { if (ev.key === 'Escape') searchBox.blur(); return; }
    var s = state.sel, step = 0;
    if (ev.key === 'Escape') { reset(); ev.preventDefault(); return; }
    if (ev.key === 'ArrowLeft') step = -ROWS;
    else if (ev.key === 'ArrowRight') step = ROWS;
    else if (ev.key === 'ArrowUp') step = -1;
    else if (ev.key === 'ArrowDown') step = 1;
    else return;
    if (isWhole(s)) return;
    var len = s.c1 - s.c0;
    var c0 = Math.max(0, Math.min(COLUMNS * ROWS - len, s.c0 + step));
    ev.preventDefault();
    state.sel = { host: s.host, c0: c0, c1: c0 + len };
    state.zoom = null;
    update(true);
  });

  // ---- the URL fragment: #sel=HOST:FROM:TO&base=HOST:FROM:TO ---------------
  function selText(sel) { return (sel.host === ALL ? 'all' : sel.host) + ':' + secs(sel.c0) + ':' + secs(sel.c1); }
  function parseSel(text) {
    var p = (text || '').split(':');
    if (p.length !== 3) return null;
    var host = p[0] === 'all' ? ALL : parseInt(p[0], 10);
    var c0 = Math.round(parseFloat(p[1]) * ROWS), c1 = Math.round(parseFloat(p[2]) * ROWS);
    if (!(host === ALL || (host >= 0 && host < HOSTS.length)) || !(c0 >= 0 && c1 > c0)) return null;
    return { host: host, c0: c0, c1: c1 };
  }
  function writeHash() {
    var text = 'sel=' + selText(state.sel) + (state.base ? '&base=' + selText(state.base) : '');
    if (location.hash.slice(1) !== text) {
      try { history.replaceState(null, '', '#' + text); } catch (e) { /* not for every URL */ }
    }
  }
  function readHash() {
    var args = {};
    location.hash.slice(1).split('&').forEach(function (kv) { var i = kv.indexOf('='); if (i > 0) args[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1)); });
    var sel = parseSel(args.sel);
    if (!sel) return false;
    state.sel = sel;
    state.base = parseSel(args.base);
    state.zoom = null;
    if (sel.host !== ALL) state.host = sel.host;
    else if (state.base && state.base.host !== ALL) state.host = state.base.host;
    return true;
  }
  window.addEventListener('hashchange', function () { if (readHash()) update(false); });

  function update(toHash) {
    compute();
    var sel = state.sel;
    var text;
    if (view.diff) {
      text = 'Comparing ' + describe(sel) + ' (' + fmt(view.total) + ' ' + DATA.unit + ') against ' + describe(state.base) +
        ' (' + fmt(view.baseTotal) + '): ' + 'widths from the second stretch, red grew, blue shrank (as flamefire diff)';
    } else {
      text = describe(sel) + ': ' + fmt(view.total) + ' ' + DATA.unit;
    }
    info.textContent = text;
    scope.dataset.from = secs(sel.c0);
    scope.dataset.to = secs(sel.c1);
    scope.dataset.host = sel.host === ALL ? 'all' : String(sel.host);
    scope.dataset.mode = view.diff ? 'diff' : 'flame';
    drawHeat();
    drawFleet();
    draw();
    if (toHash) writeHash();
  }

  // for tests and scripts: the current selection's stacks and drawn frames
  window.flamefire = {
    select: function (host, from, to, compare) {
      select({ host: host === 'all' ? ALL : host, c0: Math.round(from * ROWS), c1: Math.round(to * ROWS) }, !!compare);
      return view.computeMs;
    },
    folded: function () { var out = {}; folded(state.sel).forEach(function (v, k) { out[k] = v; }); return out; },
    frames: function () {
      return boxes.map(function (b) { return { name: b.node.n, value: b.node.v, delta: b.node.d, depth: b.depth }; });
    },
    lines: function () {
      var out = [];
      (function walk(node, trail) {
        node.k.forEach(function (c) {
          var path = trail ? trail + ';' + c.n : c.n;
          if (c.d !== null && view.diff) out.push([path, c.v, c.d]);
          walk(c, path);
        });
      })(view.tree, '');
      return out;
    },
  };

  if (!readHash()) state.sel = HOSTS.length > 1 ? whole(ALL) : whole(0);
  update(false);
  // when the time view was first drawn, for tests/browser/measure.js
  window.flamefire.drawnAt = performance.now();
  window.addEventListener('resize', function () { draw(); });
})();

'use strict';
// A Node cluster whose first worker exits mid-window and is replaced, as a
// crashing cluster does (issue 8 §3). Used by tests/restart.rs and
// scripts/bench-record.sh.
//
//   FLAMEFIRE_WORKERS       workers (default 2)
//   FLAMEFIRE_EXIT_AFTER_MS the first worker exits this long after it starts (default 2000)
//   FLAMEFIRE_IDLE=1        workers wake once a second instead of burning CPU
//
// Each worker burns CPU in a function named after its life, so that a
// profile shows which one it saw: firstLifeLoop (the worker that exits),
// steadyWorkerLoop (the others) and secondLifeLoop (its replacement).
// The primary prints one line per worker: "worker <pid> <life>".
const cluster = require('cluster');

const workers = Number(process.env.FLAMEFIRE_WORKERS || 2);
const exitAfter = Number(process.env.FLAMEFIRE_EXIT_AFTER_MS || 2000);
const idle = process.env.FLAMEFIRE_IDLE === '1';

function burn(seed) {
  let x = seed;
  for (let i = 0; i < 20000; i++) x = (Math.sqrt(x + i) * 1.0001) % 1e6;
  return x;
}

function loopNamed(name) {
  let sink = 0;
  const loops = {
    firstLifeLoop() {
      const until = Date.now() + 50;
      while (Date.now() < until) sink += burn(sink);
      setImmediate(loops.firstLifeLoop);
    },
    steadyWorkerLoop() {
      const until = Date.now() + 50;
      while (Date.now() < until) sink += burn(sink);
      setImmediate(loops.steadyWorkerLoop);
    },
    secondLifeLoop() {
      const until = Date.now() + 50;
      while (Date.now() < until) sink += burn(sink);
      setImmediate(loops.secondLifeLoop);
    },
  };
  return loops[name];
}

if (cluster.isPrimary) {
  let stopping = false;
  const lives = new Map();
  const fork = (life) => {
    const w = cluster.fork({ FLAMEFIRE_LIFE: life });
    lives.set(w.id, life);
    w.on('online', () => console.log(`worker ${w.process.pid} ${life}`));
  };
  for (let i = 0; i < workers; i++) fork(i === 0 ? 'first' : 'steady');
  cluster.on('exit', () => {
    if (!stopping) fork('second');
  });
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGKILL');
    process.exit(0);
  };
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, stop);
  console.log(`primary ${process.pid}`);
} else {
  const life = process.env.FLAMEFIRE_LIFE;
  if (life === 'first') setTimeout(() => process.exit(3), exitAfter);
  if (idle) {
    setInterval(() => {}, 1000);
  } else {
    const name = { first: 'firstLifeLoop', steady: 'steadyWorkerLoop', second: 'secondLifeLoop' }[life];
    loopNamed(name)();
  }
}

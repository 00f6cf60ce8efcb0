'use strict';
// resource-guard demo: a synthetic data generator that writes JSON-lines
// records to an output directory under a memory limit and a disk floor.
//
// Worker threads generate the records; the main thread watches RSS, heap,
// disk space and CPU through resource-guard, feeds a DegradationController,
// and publishes the level to the workers, which shrink their batches at
// `reduced` and `minimal`, flush what they retain, and stop cleanly at
// `emergency`. Run `npm start -- --help` for the flags.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const rg = require('../dist/index.js');

const HELP = `Usage: npm start -- [options]

  --records N          records to generate (accepts 1e6)       default 1e6   
  --workers N          generator threads, sharing one budget   default 2
  --memory-limit SIZE  memory limit for the whole process      default 512MiB
  --min-free SIZE      stop before free disk falls below this  default 200MB
  --batch N            records per batch at level normal       default 5000
  --window N           batches a thread keeps at level reduced default 8
                       (at normal it keeps what the shared budget allows)
  --out DIR            output directory, kept after the run    default a new
                       directory under the system temp dir, removed at exit
  --json               print the summary as JSON (for scripts)
  --quiet              no status line, only the summary
  -h, --help           this text

Sizes need a unit: decimal (kB, MB, GB = powers of 1000), binary (KiB, MiB,
GiB = powers of 1024) or B for bytes. Try \`--memory-limit 256MB\` to watch it degrade and
recover, or a limit ~20 MiB above the starting RSS it prints (the RSS with
its worker threads loaded) to see it reach emergency and stop gracefully.
Exit status: 0 when every record was written, 2 when it stopped at emergency,
1 on a bad flag or an error.`;

/**
 * A size flag. A bare number is refused: `--memory-limit 512` could mean 512
 * bytes or 512 MiB, and guessing wrong either kills the run at once or never
 * limits it.
 */
function size(value, flag) {
  if (/^\s*\d+(?:\.\d+)?(?:e\d+)?\s*$/i.test(value)) {
    const v = value.trim();
    throw new Error(`${flag} ${v} has no unit: did you mean ${flag} ${v}MiB (or ${v}MB)? Write ${v}B for bytes`);
  }
  return rg.parseSize(value, flag);
}

function parseArgs(argv) {
  const o = {
    records: 1_000_000,
    workers: 2,
    memoryLimit: 512 * 1024 ** 2,
    minFree: 200e6,
    batch: 5000,
    window: 8,
    out: null,
    json: false,
    quiet: false,
  };
  const take = (i, flag) => {
    if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
    return argv[i + 1];
  };
  const count = (v, flag, min) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min}, not ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '-h':
      case '--help':
        o.help = true;
        break;
      case '--records':
        o.records = count(take(i, a), a, 1);
        i++;
        break;
      case '--workers':
        o.workers = count(take(i, a), a, 1);
        if (o.workers > 64) throw new Error('--workers must be at most 64');
        i++;
        break;
      case '--memory-limit':
        o.memoryLimit = size(take(i, a), a);
        i++;
        break;
      case '--min-free':
        o.minFree = size(take(i, a), a);
        i++;
        break;
      case '--batch':
        o.batch = count(take(i, a), a, 1);
        i++;
        break;
      case '--window':
        o.window = count(take(i, a), a, 0);
        i++;
        break;
      case '--out':
        o.out = take(i, a);
        i++;
        break;
      case '--json':
        o.json = true;
        break;
      case '--quiet':
        o.quiet = true;
        break;
      default:
        throw new Error(`unknown flag ${a} (see --help)`);
    }
  }
  return o;
}

const MB = (b) => rg.formatBytes(b);
const LEVELS = rg.DEGRADATION_LEVELS;

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`demo: ${err.message}`);
    return 1;
  }
  if (opts.help) {
    console.log(HELP);
    return 0;
  }
  rg.ensureSampler();
  // Without --out the records go to a new directory under the system temp
  // directory, removed when the demo exits (normally, on an error or on
  // Ctrl-C); with --out they are kept.
  const keep = opts.out !== null;
  const outDir = keep ? path.resolve(opts.out) : fs.mkdtempSync(path.join(os.tmpdir(), 'resource-guard-demo-'));
  fs.mkdirSync(outDir, { recursive: true });
  let removed = false;
  const removeOutput = () => {
    if (keep || removed) return;
    removed = true;
    fs.rmSync(outDir, { recursive: true, force: true });
  };
  process.once('exit', removeOutput);

  const controller = new rg.DegradationController({
    minDwellMs: 500,
    thresholds: {
      diskAvailable: { reduced: opts.minFree * 4, minimal: opts.minFree * 2, emergency: opts.minFree },
      cpu: null, // other jobs on a shared machine are not this job's pressure
      eventLoopLagMs: null,
    },
  });
  const guard = new rg.ResourceGuard({
    memory: { hardLimit: opts.memoryLimit, softLimit: Math.floor(opts.memoryLimit * 0.7) },
    disk: { path: outDir, minFree: opts.minFree, checkInterval: 1 },
    degradation: controller,
  });
  const changes = [];
  let t0 = performance.now();
  guard.on('level', (c) => changes.push({ from: c.from, to: c.to, input: c.input, atMs: Math.round(performance.now() - t0) }));

  const control = new SharedArrayBuffer(12);
  const ctl = new Int32Array(control);
  const progress = new SharedArrayBuffer(8 * 4 * opts.workers);
  const prog = new Float64Array(progress);
  const budgetName = `resource-guard-demo-${process.pid}`;
  // The batches all threads retain share 40 % of the memory limit.
  const budgetLimit = Math.max(1, Math.floor(opts.memoryLimit * 0.4));
  const budget = rg.Budget.open(budgetName, budgetLimit);

  const tty = Boolean(process.stdout.isTTY) && !opts.json && !opts.quiet;
  // The status line is redrawn in place on a terminal, so it must never wrap:
  // it is cut to the terminal's width (80 when that is unknown or not a
  // terminal), less three columns: one because some terminals wrap on the
  // last column, two for the "^C" a terminal echoes on Ctrl-C.
  const columns = () => Math.max(20, (tty && process.stdout.columns) || 80) - 3;
  const say = (line) => {
    if (!opts.json) console.log(line);
  };

  const share = Math.floor(opts.records / opts.workers);
  const workers = [];
  const ready = [];
  const results = [];
  for (let id = 0; id < opts.workers; id++) {
    const quota = id === opts.workers - 1 ? opts.records - share * (opts.workers - 1) : share;
    const file = path.join(outDir, `part-${String(id).padStart(3, '0')}.jsonl`);
    const w = new Worker(path.join(__dirname, 'worker.js'), {
      // A small young generation keeps garbage from inflating RSS, so the
      // figure the guard watches follows what the threads really retain.
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
      workerData: { id, file, quota, baseBatch: opts.batch, budgetName, budgetLimit, control, progress, windowBatches: opts.window, seed: 0x9e3779b9 ^ (id + 1) },
    });
    ready.push(new Promise((resolve) => w.once('message', resolve)));
    workers.push(
      new Promise((resolve, reject) => {
        w.once('message', () => w.once('message', (m) => results.push(m)));
        w.once('error', reject);
        w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker ${id} exited with code ${code}`))));
      }),
    );
  }
  // Every thread is loaded: this is the process's starting RSS.
  await Promise.race([Promise.all(ready), Promise.all(workers)]);
  let stopReason = null;
  let interrupted = false;
  // Ctrl-C, handled from before the first line is printed (an interrupt
  // right after the demo speaks must not find the default action): every
  // thread finishes its batch and stops, then the output is removed (unless
  // --out) and the demo exits 130. A second Ctrl-C exits at once.
  const onSigint = () => {
    if (interrupted) {
      removeOutput();
      process.exit(130);
    }
    interrupted = true;
    if (stopReason === null) stopReason = 'interrupted (Ctrl-C)';
    Atomics.store(ctl, 1, 1);
    Atomics.notify(ctl, 1);
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  const startRss = rg.readRss();
  say(`resource-guard demo: ${opts.records.toLocaleString('en-US')} records, ${opts.workers} worker thread(s)`);
  say(`  memory limit ${MB(opts.memoryLimit)}, disk floor ${MB(opts.minFree)}, starting RSS ${MB(startRss)}`);
  say(`  output in ${outDir}${keep ? '' : ' (removed at exit)'}`);
  t0 = performance.now();
  Atomics.store(ctl, 2, 1);
  Atomics.notify(ctl, 2);

  let peakRss = startRss;
  let lastStatus = 0;
  const written = () => {
    let n = 0;
    for (let id = 0; id < opts.workers; id++) n += prog[id * 4];
    return n;
  };
  const status = (final) => {
    const now = performance.now();
    const s = guard.stats(); // feeds the controller
    if (s.rss !== null && s.rss > peakRss) peakRss = s.rss;
    const level = controller.levelIndex;
    Atomics.store(ctl, 0, level);
    if (level === 3 && stopReason === null) {
      stopReason = `emergency (${changes.length ? changes[changes.length - 1].input : 'memory'})`;
      Atomics.store(ctl, 1, 1);
      Atomics.notify(ctl, 1);
    }
    const every = tty ? 200 : 1000;
    if (opts.quiet || opts.json || (!final && now - lastStatus < every)) return;
    lastStatus = now;
    const n = written();
    const frac = Math.min(1, n / opts.records);
    const rate = n / Math.max(0.001, (now - t0) / 1000);
    const snap = rg.readSnapshot();
    const heap = process.memoryUsage().heapUsed;
    const disk = s.diskAvailable === null ? 'unknown' : MB(s.diskAvailable);
    const line = statusLine(columns(), {
      frac,
      rate,
      rss: MB(s.rss ?? NaN),
      heap: MB(heap),
      disk,
      cpu: snap.sysLoad,
      level: LEVELS[level],
    });
    // \r and erase-to-end-of-line: a shorter line leaves nothing behind.
    if (tty) process.stdout.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
    else console.log(line);
  };

  const timer = setInterval(status, 50);
  let failure = null;
  try {
    await Promise.all(workers);
  } catch (err) {
    failure = err;
  } finally {
    clearInterval(timer);
  }
  status(true);
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigint);
  if (failure) {
    console.error(`demo: ${failure.message}`);
    removeOutput();
    return 1;
  }

  const seconds = (performance.now() - t0) / 1000;
  const total = results.reduce((a, r) => a + r.written, 0);
  const bytes = results.reduce((a, r) => a + r.bytes, 0);
  const flushes = results.reduce((a, r) => a + r.flushes, 0);
  const peak = Math.max(peakRss, rg.readPeakRss());
  const summary = {
    completed: total === opts.records,
    stoppedAt: stopReason,
    recordsRequested: opts.records,
    recordsWritten: total,
    bytesWritten: bytes,
    files: results.map((r) => r.file).sort(),
    seconds: Number(seconds.toFixed(3)),
    recordsPerSecond: Math.round(total / seconds),
    startRss,
    peakRss: peak,
    memoryLimit: opts.memoryLimit,
    levelChanges: changes,
    flushes,
    budgetPeak: budget.peak,
    budgetUsedAtEnd: budget.used,
    outDir,
    outputKept: keep,
    interrupted,
  };
  budget.close();
  guard.close();
  removeOutput();
  if (opts.json) {
    console.log(JSON.stringify(summary));
  } else {
    say('');
    if (interrupted) {
      say('Interrupted: every thread finished the batch it was writing and closed its file.');
    } else if (stopReason) {
      say(`Stopped gracefully at ${stopReason}.`);
      say('  Memory or disk reached the emergency threshold. Every thread finished the');
      say('  batch it was writing and closed its file: nothing is half-written.');
    } else {
      say('Done: every record was written.');
    }
    say(`  records written: ${total.toLocaleString('en-US')} of ${opts.records.toLocaleString('en-US')} in ${results.length} file(s), ${MB(bytes)}`);
    say(`  time: ${seconds.toFixed(1)} s (${summary.recordsPerSecond.toLocaleString('en-US')} records/s)`);
    say(`  peak RSS: ${MB(peak)} (limit ${MB(opts.memoryLimit)}, started at ${MB(startRss)})`);
    say(`  level changes: ${changes.length}${changes.length ? ` (${changes.map((c) => `${c.from}→${c.to} at ${(c.atMs / 1000).toFixed(1)} s`).join(', ')})` : ''}`);
    say(`  window flushes: ${flushes}; shared budget peak ${MB(summary.budgetPeak)} of ${MB(budgetLimit)}`);
    say(keep ? `  output: ${outDir} (kept)` : `  output: removed ${outDir} (pass --out DIR to keep it)`);
  }
  if (interrupted) return 130;
  return stopReason ? 2 : 0;
}

/**
 * The status line, at most `width` characters: a progress bar for the records
 * written and the figures, dropping the least useful ones first when the
 * terminal is narrow. Bar width grows with the room left.
 */
function statusLine(width, f) {
  const pct = `${(f.frac * 100).toFixed(0).padStart(3)}%`;
  const fields = [
    `${Math.round(f.rate).toLocaleString('en-US').padStart(9)} rec/s`,
    `RSS ${f.rss.padStart(8)}`,
    `level ${f.level.padEnd(9)}`,
    `disk ${f.disk.padStart(9)}`,
    `heap ${f.heap.padStart(8)}`,
    `CPU ${(Number.isFinite(f.cpu) ? (f.cpu * 100).toFixed(0) : '?').padStart(3)}%`,
  ];
  const minBar = 10;
  // Keep as many fields as fit beside a bar of at least minBar cells.
  let kept = fields.length;
  const textOf = (k) => [pct, ...fields.slice(0, k)].join(' ');
  while (kept > 0 && minBar + 3 + textOf(kept).length > width) kept--;
  const text = textOf(kept);
  const barWidth = Math.max(1, Math.min(40, width - 3 - text.length));
  const filled = Math.round(f.frac * barWidth);
  return `[${'#'.repeat(filled).padEnd(barWidth, '.')}] ${text}`.slice(0, width);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);

'use strict';
// Benchmark harness.
//
// Rows of one section are not timed one after another. `op()` and `opAsync()`
// register a row; the rows registered since the last flush are then timed
// together, in rounds: each round times every row once, and each round starts
// with a different row (round r runs rows r, r+1, …, wrapping around), so a
// change of load on a shared machine falls on every row alike rather than on
// whichever row happened to be running. Every row gets `warmup` untimed rounds
// and `reps` timed ones (at least 5); a figure is the median of its timed
// rounds, reported with their minimum and maximum. A ratio between two rows is
// the median of the per-round ratios (round i of one row against round i of the
// other), again with its range.
//
// Rows are flushed (timed) when a section starts, when `value()` records a
// figure, when a pending row's `samples`/`median` is read, and by `flush()`.
// Rows timed asynchronously (`opAsync`) are flushed only by `await
// bench.flush()`: a suite calls it before it tears down what those rows use and
// before it starts the next section.
const { performance } = require('node:perf_hooks');

const DEFAULTS = { reps: 7, warmup: 2, repMs: 60 };
const MIN_REPS = 5;

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function range(values) {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

class Bench {
  /** Row functions of rows not yet timed: row -> { fn, async }. */
  #pending = new Map();
  #flushes = 0;

  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    if (!(this.options.reps >= MIN_REPS)) throw new RangeError(`bench: reps must be at least ${MIN_REPS}`);
    this.rows = [];
    this.group = '';
  }

  /** Starts a group of rows (a section of the printed table). */
  section(title) {
    this.#flushSync(`section "${title}"`);
    this.group = title;
    if (!this.options.quiet) console.log(`\n## ${title}`);
  }

  /**
   * Registers a synchronous operation. `fn(n)` must perform the operation n
   * times (the loop lives in fn so the harness adds no call per operation).
   * options: { baseline: name of an earlier row in this section to compare
   * with, target: text, maxNs: numeric target for the check column, minRatio,
   * note }. Returns the row; reading its `samples` or `median` times it (and
   * every row registered before it) at once.
   */
  op(name, fn, options = {}) {
    return this.#register(name, fn, options, false);
  }

  /**
   * Registers an asynchronous operation: `fn(n)` returns a promise after n
   * operations. It is timed by the next `await bench.flush()`.
   */
  async opAsync(name, fn, options = {}) {
    return this.#register(name, fn, options, true);
  }

  /** Times every registered row that has not been timed yet. */
  async flush() {
    if (![...this.#pending.values()].some((p) => p.async)) {
      this.#flushSync('flush');
      return;
    }
    const rows = [...this.#pending.keys()];
    const fns = rows.map((r) => this.#pending.get(r));
    this.#pending.clear();
    const id = ++this.#flushes;
    const plans = rows.map((row, i) => ({ row, fn: fns[i].fn, async: fns[i].async }));
    for (const p of plans) {
      p.n = p.async ? await calibrateAsync(p.fn, this.options.repMs) : calibrate(p.fn, this.options.repMs);
      p.samples = [];
    }
    await this.#rounds(plans, async (p) => {
      const t0 = performance.now();
      if (p.async) await p.fn(p.n);
      else p.fn(p.n);
      return performance.now() - t0;
    });
    for (const p of plans) this.#settle(p, id);
  }

  /** Records a figure measured by other means (e.g. staleness in ms). */
  value(name, samples, unit, options = {}) {
    this.#flushSync(`value "${name}"`);
    const row = this.#row(name, unit, options);
    row.samples = [...samples];
    Object.assign(row, summarize(row.samples));
    row.higherIsBetter = options.higherIsBetter ?? false;
    if (options.max !== undefined) row.meetsTarget = row.median < options.max;
    if (options.min !== undefined) row.meetsTarget = row.median >= options.min;
    this.rows.push(row);
    this.#print(row);
    return row;
  }

  /**
   * Computes every ratio against its baseline, once everything is timed. A
   * ratio > 1 means the row is better than its baseline.
   */
  finish() {
    if (this.#pending.size) throw new Error('bench: rows left untimed; call await bench.flush() first');
    for (const row of this.rows) {
      if (!row.baseline) continue;
      const base = this.rows.find((r) => r.group === row.group && r.name === row.baseline);
      if (!base) throw new Error(`bench: no baseline row "${row.baseline}" in section "${row.group}"`);
      const better = (b, x) => (row.higherIsBetter ? x / b : b / x);
      let ratios;
      if (base.samples.length === row.samples.length) {
        ratios = row.samples.map((x, i) => better(base.samples[i], x));
      } else {
        ratios = [better(base.median, row.median)];
      }
      row.ratio = median(ratios);
      const r = range(ratios);
      row.ratioMin = r.min;
      row.ratioMax = r.max;
      row.sameRounds = base.flush !== undefined && base.flush === row.flush && base.samples.length === row.samples.length;
      if (row.maxNs !== undefined) row.meetsTarget = row.median <= row.maxNs;
      if (row.minRatio !== undefined) row.meetsTarget = (row.meetsTarget ?? true) && row.ratio >= row.minRatio;
    }
    for (const row of this.rows) {
      if (!row.baseline && row.maxNs !== undefined) row.meetsTarget = row.median <= row.maxNs;
    }
  }

  #register(name, fn, options, isAsync) {
    const row = this.#row(name, 'ns/op', options);
    row.higherIsBetter = false;
    if (options.maxNs !== undefined) row.maxNs = options.maxNs;
    if (options.minRatio !== undefined) row.minRatio = options.minRatio;
    // Until timed, reading the figures times the pending rows (synchronous ones only).
    for (const key of ['samples', 'median', 'min', 'max']) {
      Object.defineProperty(row, key, {
        configurable: true,
        enumerable: true,
        get: () => {
          this.#flushSync(`reading "${name}"`);
          return row[key];
        },
      });
    }
    this.rows.push(row);
    this.#pending.set(row, { fn, async: isAsync });
    return row;
  }

  #row(name, unit, options) {
    const row = {
      group: this.group,
      name,
      unit,
      note: options.note ?? '',
      target: options.target ?? '',
      summary: options.summary ?? false,
    };
    if (options.baseline) row.baseline = options.baseline;
    return row;
  }

  #flushSync(why) {
    if (this.#pending.size === 0) return;
    for (const { async } of this.#pending.values()) {
      if (async) {
        throw new Error(`bench: ${why} with asynchronous rows untimed; call await bench.flush() first`);
      }
    }
    // Every pending row is synchronous: flush() then completes synchronously
    // apart from its returned promise.
    const plans = [...this.#pending].map(([row, { fn }]) => ({ row, fn, n: calibrate(fn, this.options.repMs), samples: [] }));
    this.#pending.clear();
    const id = ++this.#flushes;
    this.#roundsSync(plans);
    for (const p of plans) this.#settle(p, id);
  }

  #roundsSync(plans) {
    const total = this.options.warmup + this.options.reps;
    for (let r = 0; r < total; r++) {
      for (let k = 0; k < plans.length; k++) {
        const p = plans[(k + r) % plans.length];
        const t0 = performance.now();
        p.fn(p.n);
        const dt = performance.now() - t0;
        if (r >= this.options.warmup) p.samples.push((dt * 1e6) / p.n);
      }
    }
  }

  async #rounds(plans, time) {
    const total = this.options.warmup + this.options.reps;
    for (let r = 0; r < total; r++) {
      for (let k = 0; k < plans.length; k++) {
        const p = plans[(k + r) % plans.length];
        const dt = await time(p);
        if (r >= this.options.warmup) p.samples.push((dt * 1e6) / p.n);
      }
    }
  }

  #settle(plan, flushId) {
    const row = plan.row;
    for (const key of ['samples', 'median', 'min', 'max']) delete row[key];
    row.samples = plan.samples;
    Object.assign(row, summarize(plan.samples));
    row.iterations = plan.n;
    row.flush = flushId;
    this.#print(row);
  }

  #print(row) {
    if (this.options.quiet) return;
    const figure = `${formatValue(row.median, row.unit)} [${formatValue(row.min, row.unit)} – ${formatValue(row.max, row.unit)}]`;
    console.log(`  ${row.name.padEnd(58)} ${figure}`);
  }

  /**
   * Markdown table of the rows marked `summary` (in the order of their mark),
   * for the README: ratios only (compared in the same rounds), or for rows in
   * other units the figure itself, as absolute times on a shared machine do
   * not reproduce from run to run.
   */
  summaryMarkdown() {
    const out = ['| operation | compared with | result: median (lowest – highest round) |', '|---|---|---|'];
    const rows = this.rows.filter((x) => x.summary).sort((a, b) => Number(a.summary) - Number(b.summary));
    for (const r of rows) {
      const base = r.baseline ? this.rows.find((b) => b.group === r.group && b.name === r.baseline) : null;
      let result;
      if (r.unit === 'ns/op' && r.ratio !== undefined) result = formatRatioRange(r);
      else result = `${formatFigure(r)}${base ? `; ${base.name}: ${formatValue(base.median, base.unit)}` : ''}`;
      out.push(`| ${r.name} | ${base ? base.name : ''} | ${result} |`);
    }
    return out.join('\n');
  }

  /** Markdown table of every row. */
  markdown() {
    const out = [];
    let group = null;
    for (const r of this.rows) {
      if (r.group !== group) {
        group = r.group;
        out.push('', `### ${group}`, '', '| operation | median | min – max | vs baseline (median ratio, range) | target |', '|---|---:|---:|---|---|');
      }
      const ratio = r.ratio === undefined ? '' : `${formatRatioRange(r)} vs ${r.baseline}`;
      const target = r.target ? `${r.target}${r.meetsTarget === undefined ? '' : r.meetsTarget ? ' ✓' : ' ✗'}` : '';
      out.push(
        `| ${r.name}${r.note ? ` (${r.note})` : ''} | ${formatValue(r.median, r.unit)} | ${formatValue(r.min, r.unit)} – ${formatValue(r.max, r.unit)} | ${ratio} | ${target} |`,
      );
    }
    return out.join('\n');
  }
}

function summarize(samples) {
  const { min, max } = range(samples);
  return { median: median(samples), min, max };
}

/**
 * Finds n such that fn(n) takes about repMs: grows n by 4 until one call takes
 * a quarter of that, then scales.
 */
function calibrate(fn, repMs, maxN = 1 << 30) {
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    fn(n);
    const dt = performance.now() - t0;
    if (dt >= repMs / 4 || n >= maxN) return Math.max(1, Math.round((n * repMs) / Math.max(dt, 0.001)));
    n *= 4;
  }
}

async function calibrateAsync(fn, repMs, maxN = 1 << 24) {
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    await fn(n);
    const dt = performance.now() - t0;
    if (dt >= repMs / 4 || n >= maxN) return Math.max(1, Math.round((n * repMs) / Math.max(dt, 0.001)));
    n *= 4;
  }
}

function formatValue(v, unit) {
  if (unit !== 'ns/op') return `${Number.isFinite(v) ? +v.toPrecision(4) : v} ${unit}`;
  if (v < 1000) return `${v.toFixed(v < 10 ? 2 : 1)} ns`;
  if (v < 1e6) return `${(v / 1000).toFixed(2)} µs`;
  return `${(v / 1e6).toFixed(2)} ms`;
}

function formatFigure(r) {
  return `${formatValue(r.median, r.unit)} (${formatValue(r.min, r.unit)} – ${formatValue(r.max, r.unit)})`;
}

function formatRatio(r) {
  if (!Number.isFinite(r)) return String(r);
  return r >= 1 ? `${r.toFixed(r >= 10 ? 0 : 1)}× better` : `${(1 / r).toFixed(r <= 0.1 ? 0 : 1)}× worse`;
}

function formatRatioRange(r) {
  if (r.ratio === undefined) return '';
  if (r.ratioMin === undefined || r.ratioMin === r.ratioMax) return formatRatio(r.ratio);
  const bare = (x) => (x >= 1 ? x.toFixed(x >= 10 ? 0 : 1) : (1 / x).toFixed(x <= 0.1 ? 0 : 1));
  // A range on both sides of 1 names its direction at each end.
  if (r.ratioMin < 1 && r.ratioMax >= 1) return `${formatRatio(r.ratio)} (${formatRatio(r.ratioMin)} – ${formatRatio(r.ratioMax)})`;
  // Otherwise the range is given in the direction of the median ratio, nearest to 1 first.
  const [lo, hi] = r.ratio >= 1 ? [r.ratioMin, r.ratioMax] : [r.ratioMax, r.ratioMin];
  return `${formatRatio(r.ratio)} (${bare(lo)}–${bare(hi)})`;
}

/** Keeps a value alive so the optimiser cannot drop the work that made it. */
let sinkValue = 0;
function sink(v) {
  sinkValue ^= typeof v === 'number' ? v | 0 : 1;
  return sinkValue;
}

module.exports = { Bench, median, sink, formatValue, formatRatio };

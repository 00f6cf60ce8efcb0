'use strict';
// Benchmark harness: every row is the median of several timed repetitions
// after warm-up, and ratios compare rows measured in the same run, so a noisy
// shared machine moves numerator and denominator together.
const { performance } = require('node:perf_hooks');

const DEFAULTS = { reps: 7, warmup: 2, repMs: 60 };

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

class Bench {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.rows = [];
    this.group = '';
  }

  /** Starts a group of rows (a section of the printed table). */
  section(title) {
    this.group = title;
    if (!this.options.quiet) console.log(`\n## ${title}`);
  }

  /**
   * Times a synchronous operation. `fn(n)` must perform the operation n times
   * (the loop lives in fn so the harness adds no call per operation).
   * options: { baseline: name of an earlier row in this section to compare
   * with, target: text, maxNs: numeric target for the check column, note }.
   */
  op(name, fn, options = {}) {
    const plan = this.#plan(1 << 30);
    let step = plan.next();
    while (!step.done) {
      const t0 = performance.now();
      fn(step.value);
      step = plan.next(performance.now() - t0);
    }
    return this.#record(name, step.value.samples, step.value.n, options);
  }

  /** Times an asynchronous operation: `fn(n)` returns a promise after n operations. */
  async opAsync(name, fn, options = {}) {
    const plan = this.#plan(1 << 24);
    let step = plan.next();
    while (!step.done) {
      const t0 = performance.now();
      await fn(step.value);
      step = plan.next(performance.now() - t0);
    }
    return this.#record(name, step.value.samples, step.value.n, options);
  }

  /**
   * The iteration counts to time, for op and opAsync alike: first grows n
   * until one repetition takes about repMs, then runs the warm-up and timed
   * repetitions. Each yield receives how long the previous count took;
   * returns the per-operation samples in ns.
   */
  *#plan(maxN) {
    let n = 1;
    for (;;) {
      const dt = yield n;
      if (dt >= this.options.repMs / 4 || n >= maxN) {
        n = Math.max(1, Math.round((n * this.options.repMs) / Math.max(dt, 0.001)));
        break;
      }
      n *= 4;
    }
    const samples = [];
    for (let r = 0; r < this.options.warmup + this.options.reps; r++) {
      const dt = yield n;
      if (r >= this.options.warmup) samples.push((dt * 1e6) / n);
    }
    return { samples, n };
  }

  /** Records a figure measured by other means (e.g. staleness in ms). */
  value(name, samples, unit, options = {}) {
    const row = {
      group: this.group,
      name,
      unit,
      median: median(samples),
      samples,
      note: options.note ?? '',
      target: options.target ?? '',
      higherIsBetter: options.higherIsBetter ?? false,
      summary: options.summary ?? false,
    };
    if (options.max !== undefined) row.meetsTarget = row.median < options.max;
    if (options.min !== undefined) row.meetsTarget = row.median >= options.min;
    if (options.baseline) this.#compare(row, options.baseline);
    this.rows.push(row);
    this.#print(row);
    return row;
  }

  #record(name, samples, n, options) {
    const row = {
      group: this.group,
      name,
      unit: 'ns/op',
      median: median(samples),
      samples,
      iterations: n,
      note: options.note ?? '',
      target: options.target ?? '',
      higherIsBetter: false,
      summary: options.summary ?? false,
    };
    if (options.maxNs !== undefined) row.meetsTarget = row.median <= options.maxNs;
    if (options.baseline) this.#compare(row, options.baseline);
    if (options.minRatio !== undefined) row.meetsTarget = (row.meetsTarget ?? true) && row.ratio >= options.minRatio;
    this.rows.push(row);
    this.#print(row);
    return row;
  }

  #compare(row, baselineName) {
    const base = this.rows.find((r) => r.group === row.group && r.name === baselineName);
    if (!base) throw new Error(`bench: no baseline row "${baselineName}" in section "${row.group}"`);
    row.baseline = baselineName;
    // > 1 means this row is better than its baseline.
    row.ratio = row.higherIsBetter ? row.median / base.median : base.median / row.median;
  }

  #print(row) {
    if (this.options.quiet) return;
    const parts = [`  ${row.name.padEnd(58)} ${formatValue(row.median, row.unit).padStart(12)}`];
    if (row.ratio !== undefined) parts.push(`  ${formatRatio(row.ratio)} vs ${row.baseline}`);
    if (row.target) parts.push(`  [target ${row.target}${row.meetsTarget === undefined ? '' : row.meetsTarget ? ': met' : ': MISSED'}]`);
    console.log(parts.join(''));
  }

  /** Markdown table of the rows marked `summary`, for the README. */
  summaryMarkdown() {
    const out = ['| operation | resource-guard | compared with | ratio | target |', '|---|---:|---|---:|---|'];
    for (const r of this.rows.filter((x) => x.summary)) {
      const base = r.baseline ? this.rows.find((b) => b.group === r.group && b.name === r.baseline) : null;
      const versus = base ? `${base.name}: ${formatValue(base.median, base.unit)}` : '';
      const ratio = r.ratio === undefined ? '' : formatRatio(r.ratio);
      const target = r.target ? `${r.target}${r.meetsTarget === undefined ? '' : r.meetsTarget ? ' ✓' : ' ✗'}` : '';
      out.push(`| ${r.name} | ${formatValue(r.median, r.unit)} | ${versus} | ${ratio} | ${target} |`);
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
        out.push('', `### ${group}`, '', '| operation | median | vs baseline | target |', '|---|---:|---|---|');
      }
      const ratio = r.ratio === undefined ? '' : `${formatRatio(r.ratio)} vs ${r.baseline}`;
      const target = r.target ? `${r.target}${r.meetsTarget === undefined ? '' : r.meetsTarget ? ' ✓' : ' ✗'}` : '';
      out.push(`| ${r.name}${r.note ? ` (${r.note})` : ''} | ${formatValue(r.median, r.unit)} | ${ratio} | ${target} |`);
    }
    return out.join('\n');
  }
}

function formatValue(v, unit) {
  if (unit !== 'ns/op') return `${Number.isFinite(v) ? +v.toPrecision(4) : v} ${unit}`;
  if (v < 1000) return `${v.toFixed(v < 10 ? 2 : 1)} ns`;
  if (v < 1e6) return `${(v / 1000).toFixed(2)} µs`;
  return `${(v / 1e6).toFixed(2)} ms`;
}

function formatRatio(r) {
  if (!Number.isFinite(r)) return String(r);
  return r >= 1 ? `${r.toFixed(r >= 10 ? 0 : 1)}× better` : `${(1 / r).toFixed(r <= 0.1 ? 0 : 1)}× worse`;
}

/** Keeps a value alive so the optimiser cannot drop the work that made it. */
let sinkValue = 0;
function sink(v) {
  sinkValue ^= typeof v === 'number' ? v | 0 : 1;
  return sinkValue;
}

module.exports = { Bench, median, sink, formatValue, formatRatio };

'use strict';
// Side-by-side cost of the hot paths (the budget pair, narrow and wide;
// MemoryGuard#ok(); the snapshot read): this checkout against another built
// checkout of resource-guard (for example the previous commit, made with
// `git worktree add /tmp/prev HEAD~1 && cd /tmp/prev && npm ci && npm run build`).
// Both libraries load into one process and their rows are timed in rotating
// order within each round, so load on a shared machine falls on both alike.
// The library loaded first can be placed differently by V8; --this-first
// loads this checkout first, and a run against a copy of this checkout shows
// how large that effect is.
//
//   node --expose-gc scripts/bench-compare.js <other checkout> [--reps N]
const path = require('node:path');
const { Bench } = require('./bench/harness');

async function main() {
  const args = process.argv.slice(2);
  const other = args.find((a) => !a.startsWith('--'));
  if (!other) {
    console.error('usage: node --expose-gc scripts/bench-compare.js <other built checkout> [--reps N] [--this-first]');
    process.exit(2);
  }
  const r = args.indexOf('--reps');
  const reps = r >= 0 ? Number(args[r + 1]) : 21;
  const load = (dir) => require(path.resolve(dir, 'dist/index.js'));
  let theirs, ours;
  if (args.includes('--this-first')) {
    ours = load(path.join(__dirname, '..'));
    theirs = load(other);
  } else {
    theirs = load(other);
    ours = load(path.join(__dirname, '..'));
  }
  const bench = new Bench({ reps, warmup: 3, repMs: 60 });
  for (const [label, limit] of [['limit < 4 GiB', 2 ** 30], ['limit ≥ 4 GiB, 64-bit', 2 ** 40]]) {
    bench.section(`Budget tryReserve+release, ${label}`);
    const a = theirs.Budget.open(`compare-other-${limit}`, limit);
    const b = ours.Budget.open(`compare-this-${limit}`, limit);
    bench.op(`other: ${other}`, (n) => {
      for (let i = 0; i < n; i++) {
        const x = 64 + (i & 255);
        if (a.tryReserve(x)) a.release(x);
      }
    });
    bench.op('this checkout', (n) => {
      for (let i = 0; i < n; i++) {
        const x = 64 + (i & 255);
        if (b.tryReserve(x)) b.release(x);
      }
    }, { baseline: `other: ${other}` });
  }
  bench.section('MemoryGuard#ok() (RSS + V8 heap)');
  const ga = new theirs.MemoryGuard();
  const gb = new ours.MemoryGuard();
  const okLoop = (guard) => (n) => {
    let fine = 0;
    for (let i = 0; i < n; i++) if (guard.ok()) fine++;
    if (fine !== n) throw new Error('MemoryGuard#ok() said no with no limit near');
  };
  bench.op(`other: ${other}`, okLoop(ga));
  bench.op('this checkout', okLoop(gb), { baseline: `other: ${other}` });

  bench.section('snapshot read from JS (snapshotView[rss])');
  const snapLoop = (lib) => {
    const view = lib.snapshotView;
    const rss = lib.SnapshotField.rss;
    return (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s += view[rss];
      if (!(s > 0)) throw new Error('snapshot read: no RSS');
    };
  };
  bench.op(`other: ${other}`, snapLoop(theirs));
  bench.op('this checkout', snapLoop(ours), { baseline: `other: ${other}` });

  await bench.flush();
  ga.close?.();
  gb.close();
  bench.finish();
  console.log('\n' + bench.markdown());
  // Time of this checkout over the other's, per round: above 1 is slower.
  console.log('\nthis / other (time per operation; median of the per-round ratios, lowest – highest):');
  for (const row of bench.rows) {
    if (row.ratio === undefined) continue;
    const f = (x) => (1 / x).toFixed(3);
    console.log(`  ${row.group}: ${f(row.ratio)} (${f(row.ratioMax)} – ${f(row.ratioMin)})`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

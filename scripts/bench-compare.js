'use strict';
// Side-by-side cost of the budget hot path: this checkout against another
// built checkout of resource-guard (for example the previous commit, made with
// `git worktree add /tmp/prev HEAD~1 && cd /tmp/prev && npm ci && npm run build`).
// Both libraries load into one process and their rows are timed in rotating
// order within each round, so load on a shared machine falls on both alike.
//
//   node --expose-gc scripts/bench-compare.js <other checkout> [--reps N]
const path = require('node:path');
const { Bench } = require('./bench/harness');

async function main() {
  const args = process.argv.slice(2);
  const other = args.find((a) => !a.startsWith('--'));
  if (!other) {
    console.error('usage: node --expose-gc scripts/bench-compare.js <other built checkout> [--reps N]');
    process.exit(2);
  }
  const r = args.indexOf('--reps');
  const reps = r >= 0 ? Number(args[r + 1]) : 21;
  const theirs = require(path.resolve(other, 'dist/index.js'));
  const ours = require(path.join(__dirname, '..', 'dist/index.js'));
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
  await bench.flush();
  bench.finish();
  console.log('\n' + bench.markdown());
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

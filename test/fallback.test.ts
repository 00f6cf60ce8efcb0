// Where external ArrayBuffers are refused (Electron's V8 sandbox), the
// library falls back to one native call per snapshot read or budget
// operation. RESOURCE_GUARD_NO_EXTERNAL_BUFFERS=1 forces that path; the same
// semantics must hold.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { expect, test } from 'vitest';

const root = path.join(__dirname, '..');

test('without external buffers: budgets, snapshot and the hot check still work', () => {
  const script = `
    const rg = require('./dist/index.js');
    const out = { shared: rg.sharedMemory, budgetShared: rg.Budget.sharedMemory };
    const b = rg.Budget.open('fallback', 100);
    out.exact = b.tryReserve(100);
    out.over = b.tryReserve(1);
    try { b.release(101); } catch (e) { out.releaseCode = e.code; }
    b.release(100);
    out.used = b.used;
    const s = b.stats();
    out.successes = s.successes;
    out.failures = s.failures;
    // An allocator on the same budget keeps its own count.
    const alloc = rg.LimitedAllocator.shared('fallback');
    out.allocReserved = alloc.reserveBytes(60);
    out.allocHeld = alloc.heldBytes;
    out.envHeld = b.held;
    try { b.release(60); } catch (e) { out.crossCode = e.code; }
    try { alloc.releaseBytes(61); } catch (e) { out.allocOverCode = e.code; }
    alloc.releaseBytes(10);
    out.afterRelease = [alloc.heldBytes, b.used];
    alloc.close();
    out.afterClose = [b.used, b.held];
    const a = rg.readSnapshot();
    const end = Date.now() + 100;
    while (Date.now() < end) {}
    const c = rg.readSnapshot();
    out.seqMoved = c.seq > a.seq;
    out.rss = c.rss > 0;
    const guard = new rg.MemoryGuard({ hardLimit: rg.readRss() + 32 * 1024 * 1024 });
    const keep = [];
    let tripped = false;
    for (let i = 0; i < 200 && !tripped; i++) {
      const buf = Buffer.alloc(1024 * 1024, 1);
      keep.push(buf);
      if (!guard.ok()) tripped = true;
    }
    out.tripped = tripped;
    out.grownMiB = Math.round(keep.length);
    console.log(JSON.stringify(out));
  `;
  const env = { ...process.env, RESOURCE_GUARD_NO_EXTERNAL_BUFFERS: '1' };
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: root, env, encoding: 'utf8' }));
  expect(out.shared).toBe(false);
  expect(out.budgetShared).toBe(false);
  expect(out.exact).toBe(true);
  expect(out.over).toBe(false);
  expect(out.releaseCode).toBe('ERR_BUDGET_RELEASE_EXCEEDS_HELD');
  expect(out.used).toBe(0);
  expect(out.successes).toBe(1);
  expect(out.failures).toBe(1);
  expect(out.allocReserved).toBe(true);
  expect(out.allocHeld).toBe(60);
  expect(out.envHeld).toBe(60);
  expect(out.crossCode).toBe('ERR_BUDGET_RELEASE_EXCEEDS_HELD');
  expect(out.allocOverCode).toBe('ERR_BUDGET_RELEASE_EXCEEDS_HELD');
  expect(out.afterRelease).toEqual([50, 50]);
  expect(out.afterClose).toEqual([0, 0]);
  expect(out.seqMoved).toBe(true);
  expect(out.rss).toBe(true);
  expect(out.tripped).toBe(true);
  expect(out.grownMiB).toBeLessThan(120);
});

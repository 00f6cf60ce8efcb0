import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const fixture = path.join(__dirname, 'fixtures', 'allocator-gc.cjs');

// The child runs the compiled library: refuse to test a stale build.
beforeAll(() => {
  const src = path.join(__dirname, '..', 'src', 'allocator.ts');
  const out = path.join(__dirname, '..', 'dist', 'allocator.js');
  if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs) {
    throw new Error('dist/allocator.js is missing or older than src/allocator.ts: run `npm run build:ts` first');
  }
});

describe('GC safety net (node --expose-gc, against dist/)', () => {
  it('gives back the bytes of Buffers dropped without free, and only those', async () => {
    const { stdout } = await run(process.execPath, ['--expose-gc', fixture], { timeout: 60_000 });
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out.afterAllocate).toBe(1000 + 100 * 1024 + 20 * 512);
    expect(out.liveBeforeGc).toBe(121);
    // a real collection happened and the registry gave the dropped bytes back
    expect(out.afterGc).toBe(1000);
    expect(out.liveAfterGc).toBe(1);
    // the Buffer still referenced stayed charged and can be freed normally
    expect(out.keptStillOwned).toBe(true);
    expect(out.afterFree).toBe(0);
    // an allocator dropped with its Buffers still returns them to the shared budget
    expect(out.sharedBeforeGc).toBe(10 * 4096);
    expect(out.sharedAfterGc).toBe(0);
    // releases from the collector move the pressure level like free() does
    expect(out.pressureLevels).toEqual(['medium', 'high', 'critical', 'high', 'medium', 'low']);
  });

  it('the fixture refuses to run without --expose-gc', async () => {
    await expect(run(process.execPath, [fixture], { timeout: 60_000 })).rejects.toMatchObject({ code: 2 });
  });
});

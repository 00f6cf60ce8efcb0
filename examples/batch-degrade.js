'use strict';
// A batch job that degrades: it converts records to JSON lines, keeps a
// window of converted batches in memory before writing them, and shrinks its
// batches and flushes that window as its memory budget fills, then recovers.
//
//   node examples/batch-degrade.js
//
// The memory the job retains is charged to a LimitedAllocator (a 24 MiB
// budget); the DegradationController reads the budget's usage as its memory
// input. The records are written to a new directory under the system temp
// directory, which is removed at the end. A DiskSpaceGuard checks free space
// before every write.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { DegradationController, DiskSpaceGuard, LimitedAllocator } = require('resource-guard');

const RECORDS = 200_000;
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-batch-'));
const file = path.join(outDir, 'records.jsonl');

const memory = new LimitedAllocator('24MiB');
const disk = new DiskSpaceGuard({ path: outDir, minFree: '50MiB' });
// Recovery needs every reading 0.05 below the level's threshold, and each
// level is held at least 20 ms: a budget hovering at a threshold does not flap.
const controller = new DegradationController({ minDwellMs: 20 });
const changes = [];
controller.on('change', (e) => changes.push(`${e.from}→${e.to} at ${(e.value * 100).toFixed(0)} %`));

const fd = fs.openSync(file, 'w');
const window = []; // converted batches waiting to be written: { text, reservation }
let written = 0;
let flushes = 0;
const batchesBySize = new Map();

function flush() {
  for (const { text, reservation } of window) {
    disk.checkBeforeWrite(Buffer.byteLength(text)); // DiskSpaceError near the floor: stop before the disk is full
    fs.writeSync(fd, text);
    reservation.release();
  }
  window.length = 0;
  flushes++;
}

let next = 0;
while (next < RECORDS) {
  const { level } = controller.update({ memory: memory.allocatedBytes / memory.limit });
  if (controller.actions.terminate) {
    flush();
    throw new Error(`stopped at ${level}`);
  }
  if (controller.actions.flush && window.length > 0) flush();
  const size = Math.min(controller.batchSize(5000), RECORDS - next);
  batchesBySize.set(size, (batchesBySize.get(size) ?? 0) + 1);
  let text = '';
  for (let i = next; i < next + size; i++) {
    text += `${JSON.stringify({ id: i, name: `record-${i}`, tags: ['a', 'b', 'c'], score: (i * 7919) % 1000 })}\n`;
  }
  next += size;
  // Retain the batch, charged to the budget; write the window when the budget refuses.
  let reservation = memory.tryReserve(Buffer.byteLength(text) * 2); // UTF-16 in memory
  if (reservation === null) {
    flush();
    reservation = memory.reserve(Buffer.byteLength(text) * 2);
  }
  window.push({ text, reservation });
  if (window.length >= 64) flush();
}
flush();
fs.closeSync(fd);
written = fs.readFileSync(file, 'utf8').split('\n').length - 1;

console.log(`${written} of ${RECORDS} records written to ${file}`);
console.log(`batches: ${[...batchesBySize].map(([size, n]) => `${n} of ${size}`).join(', ')}; window flushes: ${flushes}`);
console.log(`level changes: ${changes.length ? changes.join(', ') : 'none'}; level at the end: ${controller.level}`);
console.log(`budget: peak ${(memory.peakBytes / 2 ** 20).toFixed(1)} MiB of ${memory.limit / 2 ** 20} MiB, ${memory.allocatedBytes} B reserved at the end`);
memory.close();
fs.rmSync(outDir, { recursive: true });
if (written !== RECORDS || changes.length === 0) throw new Error('the job did not degrade and finish as expected');

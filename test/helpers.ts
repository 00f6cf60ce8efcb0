// Small helpers shared by the test files.

/** The `code` of what `fn` throws, or undefined when it does not throw. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

/** Deterministic PRNG (mulberry32), so a failure can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Moves `budget`'s limit down to `lo` and back to `hi`, 1 ms at each, until
 * `done()` is true. A lowering is refused while usage is above `lo`
 * (ERR_BUDGET_LIMIT_BELOW_USAGE); any other error is thrown. Returns how many
 * lowerings took effect and how many were refused.
 */
export async function moveLimitUntil(
  budget: { setLimit(limit: number): void },
  lo: number,
  hi: number,
  done: () => boolean,
): Promise<{ lowered: number; refused: number }> {
  let lowered = 0;
  let refused = 0;
  while (!done()) {
    const code = codeOf(() => budget.setLimit(lo));
    if (code === undefined) lowered++;
    else if (code === 'ERR_BUDGET_LIMIT_BELOW_USAGE') refused++;
    else throw new Error(`setLimit: ${code}`);
    await new Promise((r) => setTimeout(r, 1));
    budget.setLimit(hi);
    await new Promise((r) => setTimeout(r, 1));
  }
  return { lowered, refused };
}

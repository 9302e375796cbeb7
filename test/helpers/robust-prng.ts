/**
 * A small seeded generator for the fuzz tests (mulberry32), so that every failure reproduces:
 * the tests print their seed, and `FUZZ_SEED=<n>` runs them again with that seed.
 */

/** mulberry32: 32 bits of state, uniform doubles in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Convenience draws over {@link mulberry32}. */
export class Prng {
  readonly #next: () => number;

  constructor(readonly seed: number) {
    this.#next = mulberry32(seed);
  }

  /** A double in [0, 1). */
  next(): number {
    return this.#next();
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }

  /** An integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.#next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** A random unsigned 32-bit integer. */
  uint32(): number {
    return (this.int(65536) * 65536 + this.int(65536)) >>> 0;
  }
}

/**
 * The seed of a fuzz run: `FUZZ_SEED` when set (to reproduce a failure), otherwise `fallback`
 * (fixed, so the suite is deterministic). Printed so a failing run can be repeated.
 */
export function fuzzSeed(what: string, fallback: number): number {
  const fromEnv = process.env.FUZZ_SEED;
  const seed = fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) >>> 0 : fallback >>> 0;
  console.log(`[fuzz] ${what}: seed ${seed} (repeat with FUZZ_SEED=${seed})`);
  return seed;
}

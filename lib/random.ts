/**
 * numpy-compatible randomness: the legacy `np.random.RandomState` (MT19937) as the seed uses it.
 *
 * `np.random.seed(s)` followed by `uniform` and `permutation` gives bit-identical results here, so
 * a model built with `randomState: s` starts from exactly the seed's weights and visits the
 * samples in exactly the seed's order.
 */
import { randomBytes } from 'node:crypto';
import { invalidType, outOfRange } from './errors.js';
import { integerIn } from './validate.js';

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

/** MT19937 with numpy's legacy seeding and sampling routines. */
export class RandomState {
  private readonly mt = new Uint32Array(N);
  private mti = N + 1;

  /** @param seed an integer in [0, 2^32 - 1], as `np.random.seed` accepts. */
  constructor(seed: number) {
    this.seed(seed);
  }

  /** A generator seeded from the operating system's strong random source. */
  static fromEntropy(): RandomState {
    return new RandomState(randomBytes(4).readUInt32LE(0));
  }

  /** `init_genrand`, the routine numpy's legacy seeding calls for an integer seed. */
  seed(seed: number): void {
    integerIn('seed', seed, 0, 2 ** 32 - 1);
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      // 1812433253 * prev mod 2^32, split to stay exact in doubles.
      mt[i] = ((((prev & 0xffff0000) >>> 16) * 1812433253) << 16) + (prev & 0x0000ffff) * 1812433253 + i;
    }
    this.mti = N;
  }

  /** The next 32-bit output (`genrand_int32`). */
  nextUint32(): number {
    const mt = this.mt;
    if (this.mti >= N) {
      let kk = 0;
      // -(y & 1) & MATRIX_A is MATRIX_A when y is odd, else 0: no branch on a random bit.
      for (; kk < N - M; kk++) {
        const y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
        mt[kk] = mt[kk + M] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
      }
      for (; kk < N - 1; kk++) {
        const y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
        mt[kk] = mt[kk + (M - N)] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
      }
      const y = (mt[N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
      mt[N - 1] = mt[M - 1] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
      this.mti = 0;
    }
    let y = mt[this.mti++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A double in [0, 1) with 53 random bits (`random_sample`). */
  randomSample(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }

  /**
   * Fills `out` with `uniform(low, high)` draws, in order (`low + (high - low) * random_sample()`).
   * `low` and `high` are finite, and so is `high - low`.
   */
  uniform(low: number, high: number, out: Float64Array | Float32Array): void {
    if (typeof low !== 'number' || !Number.isFinite(low)) throw (typeof low === 'number' ? outOfRange : invalidType)('low', 'a finite number', low);
    if (typeof high !== 'number' || !Number.isFinite(high)) throw (typeof high === 'number' ? outOfRange : invalidType)('high', 'a finite number', high);
    if (!Number.isFinite(high - low)) throw outOfRange('high - low', 'a finite number', high - low);
    if (!(out instanceof Float64Array || out instanceof Float32Array)) throw invalidType('out', 'a Float64Array or Float32Array', out);
    const range = high - low;
    for (let i = 0; i < out.length; i++) out[i] = low + range * this.randomSample();
  }

  /** A uniform integer in [0, max] by masked rejection (numpy's `random_interval`), max < 2^32. */
  interval(max: number): number {
    return this.#interval(integerIn('max', max, 0, 0xffffffff));
  }

  #interval(max: number): number {
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    let value: number;
    do {
      value = (this.nextUint32() & mask) >>> 0;
    } while (value > max);
    return value;
  }

  /**
   * `shuffle(x)`: shuffles `order` in place by numpy's legacy Fisher-Yates from the end, drawing
   * exactly what `permutation(order.length)` draws; `order` becomes `order[permutation(n)]`.
   */
  shuffle(order: Int32Array): void {
    if (!(order instanceof Int32Array)) throw invalidType('order', 'an Int32Array', order);
    for (let i = order.length - 1; i > 0; i--) {
      const j = this.#interval(i);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
  }

  /**
   * The generator's state: its 624 words, then the position of the next one (numpy's
   * `get_state()[1]` and `[2]`), into `out` when given (625 entries).
   */
  getState(out: Uint32Array = new Uint32Array(N + 1)): Uint32Array {
    if (!(out instanceof Uint32Array)) throw invalidType('out', `a Uint32Array of ${N + 1} entries`, out);
    if (out.length !== N + 1) throw outOfRange('out.length', `${N + 1}`, out.length);
    out.set(this.mt);
    out[N] = this.mti;
    return out;
  }

  /** Restores a state from {@link RandomState.getState}. */
  setState(state: Uint32Array): void {
    if (!(state instanceof Uint32Array)) throw invalidType('state', `a Uint32Array of ${N + 1} entries`, state);
    if (state.length !== N + 1) throw outOfRange('state.length', `${N + 1}`, state.length);
    if (state[N] > N) throw outOfRange(`state[${N}] (the position)`, `an integer in [0, ${N}]`, state[N]);
    this.mt.set(state.subarray(0, N));
    this.mti = state[N];
  }

  /** `permutation(n)`: a shuffled `arange(n)` (numpy's legacy permutation is `shuffle(arange(n))`). */
  permutation(n: number): Int32Array {
    integerIn('n', n, 0, 2 ** 31 - 1);
    const perm = new Int32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    this.shuffle(perm);
    return perm;
  }
}

/** RandomState against numpy's legacy np.random.RandomState (test/fixtures/random.json). */
import { describe, expect, it } from 'vitest';
import { RandomState } from '../lib/index.js';
import { resolveBackend } from '../lib/backend/index.js';
import { backends } from './helpers/backends.js';
import { randomFixture } from './helpers/fixtures.js';
import { expectSameBits } from './helpers/numeric.js';

const fx = randomFixture();

describe('RandomState matches numpy bit for bit', () => {
  it.each(fx.random_sample.map((c) => [c.seed, c.values] as const))('random_sample, seed %i', (seed, values) => {
    const rng = new RandomState(seed);
    const got = values.map(() => rng.randomSample());
    for (let i = 0; i < values.length; i++) expect(Object.is(got[i], values[i]), `value ${i}: ${got[i]} vs ${values[i]}`).toBe(true);
  });

  it('uniform(low, high) fills Float64Array in draw order', () => {
    const { seed, low, high, values } = fx.uniform;
    const out = new Float64Array(values.length);
    new RandomState(seed).uniform(low, high, out);
    expectSameBits(out, values, `uniform(${low}, ${high}), seed ${seed}`);
  });

  it('uniform draws continue the same stream (split draws equal one draw)', () => {
    const { seed, low, high, values } = fx.uniform;
    const rng = new RandomState(seed);
    const a = new Float64Array(3);
    const b = new Float64Array(values.length - 3);
    rng.uniform(low, high, a);
    rng.uniform(low, high, b);
    expectSameBits([...a, ...b], values, 'uniform in two calls');
  });

  it('uniform into a Float32Array rounds each float64 draw', () => {
    const { seed, low, high, values } = fx.uniform;
    const out = new Float32Array(values.length);
    new RandomState(seed).uniform(low, high, out);
    expectSameBits(out, Float32Array.from(values), 'uniform into Float32Array');
  });

  it.each(fx.permutation.map((c) => [c.seed, c.n, c.draws_before, c.perm] as const))(
    'permutation: seed %i, n %i, after %i random_sample draws',
    (seed, n, before, perm) => {
      const rng = new RandomState(seed);
      for (let i = 0; i < before; i++) rng.randomSample();
      const got = rng.permutation(n);
      expect(got).toBeInstanceOf(Int32Array);
      expectSameBits(got, perm, `permutation(${n})`);
    },
  );

  it('re-seeding restarts the stream', () => {
    const rng = new RandomState(123);
    const first = [rng.randomSample(), rng.randomSample()];
    rng.seed(fx.random_sample[0].seed);
    const values = fx.random_sample[0].values;
    expectSameBits([rng.randomSample(), rng.randomSample()], values.slice(0, 2), 'after seed()');
    rng.seed(123);
    expectSameBits([rng.randomSample(), rng.randomSample()], first, 'seed(123) again');
  });

  it('randomSample stays in [0, 1) and interval(max) in [0, max]', () => {
    const rng = new RandomState(99);
    for (let i = 0; i < 2000; i++) {
      const v = rng.randomSample();
      expect(v >= 0 && v < 1).toBe(true);
      const k = rng.interval(6);
      expect(Number.isInteger(k) && k >= 0 && k <= 6).toBe(true);
    }
    expect(rng.interval(0)).toBe(0);
  });

  it.each(fx.permutation.map((c) => [c.seed, c.n, c.draws_before, c.perm] as const))(
    'shuffle(order) is order[permutation(n)] and draws what permutation draws: seed %i, n %i, after %i draws',
    (seed, n, before, perm) => {
      const a = new RandomState(seed);
      const b = new RandomState(seed);
      for (let i = 0; i < before; i++) {
        a.randomSample();
        b.randomSample();
      }
      const order = Int32Array.from({ length: n }, (_, k) => 1000 + 7 * k);
      a.shuffle(order);
      expectSameBits(order, perm.map((p) => 1000 + 7 * p), `shuffle of ${n}`);
      b.permutation(n);
      expect(a.getState()).toEqual(b.getState());
      expect(a.randomSample()).toBe(b.randomSample());
    },
  );

  it('getState and setState restore the stream, across a twist of the state', () => {
    const rng = new RandomState(7);
    for (let i = 0; i < 600; i++) rng.nextUint32();
    const saved = rng.getState();
    expect(saved).toBeInstanceOf(Uint32Array);
    expect(saved.length).toBe(625);
    expect(saved[624]).toBe(600);
    const first = Array.from({ length: 100 }, () => rng.nextUint32());
    const other = new RandomState(8);
    other.setState(saved);
    expect(Array.from({ length: 100 }, () => other.nextUint32())).toEqual(first);
    // getState(out) fills the given array; the state is copied, not shared.
    const out = new Uint32Array(625);
    expect(rng.getState(out)).toBe(out);
    out[0] ^= 1;
    expect(rng.getState()[0]).not.toBe(out[0]);
  });

  it('fromEntropy gives a working generator', () => {
    const rng = RandomState.fromEntropy();
    const v = rng.randomSample();
    expect(v >= 0 && v < 1).toBe(true);
  });
});

describe('RandomState arguments', () => {
  it('rejects seeds numpy rejects instead of wrapping them (RandomState is public API)', () => {
    // Today new RandomState(-1) silently equals new RandomState(2 ** 32 - 1), 1.5 seeds 1 and 'abc' seeds 0.
    for (const seed of [-1, 2 ** 32, 1.5, NaN, Infinity]) {
      expect(() => new RandomState(seed), `seed ${seed}`).toThrow(RangeError);
    }
    for (const seed of ['1', null, undefined, 1n]) {
      expect(() => new RandomState(seed as unknown as number), `seed ${String(seed)}`).toThrow(TypeError);
    }
    expect(() => new RandomState(0)).not.toThrow();
    expect(() => new RandomState(2 ** 32 - 1)).not.toThrow();
  });

  it('rejects a bad order, state or state buffer, naming it, and leaves the generator as it was', () => {
    const rng = new RandomState(3);
    const before = rng.getState();
    expect(() => rng.shuffle([3, 1, 2] as unknown as Int32Array)).toThrow(/order/);
    expect(() => rng.shuffle(new Float64Array(3) as unknown as Int32Array)).toThrow(TypeError);
    expect(() => rng.getState(new Uint32Array(624))).toThrow(RangeError);
    expect(() => rng.getState(new Int32Array(625) as unknown as Uint32Array)).toThrow(TypeError);
    expect(() => rng.setState(new Uint32Array(10))).toThrow(/state\.length/);
    const bad = rng.getState();
    bad[624] = 625;
    expect(() => rng.setState(bad)).toThrow(RangeError);
    expect(() => rng.setState([1, 2] as unknown as Uint32Array)).toThrow(TypeError);
    expect(rng.getState()).toEqual(before);
  });

  it('rejects a bad interval bound or uniform range, naming it, and leaves the generator as it was', () => {
    // interval(-1) used to loop forever; interval('7'), 2^33 + 5 and 0.5 were silently coerced.
    const rng = new RandomState(5);
    const before = rng.getState();
    for (const max of [-1, -4294967296, 2 ** 32, 2 ** 33 + 5, 0.5, NaN, Infinity]) {
      expect(() => rng.interval(max), `interval(${max})`).toThrow(RangeError);
    }
    expect(() => rng.interval('7' as unknown as number)).toThrow(/max/);
    const out = new Float64Array(4);
    expect(() => rng.uniform(NaN, 1, out)).toThrow(/low/);
    expect(() => rng.uniform(0, Infinity, out)).toThrow(/high/);
    expect(() => rng.uniform(-1e308, 1e308, out)).toThrow(/high - low/);
    expect(() => rng.uniform('a' as unknown as number, 1, out)).toThrow(TypeError);
    expect(() => rng.uniform(0, 1, null as unknown as Float64Array)).toThrow(/out/);
    expect(() => rng.uniform(0, 1, [0, 0] as unknown as Float64Array)).toThrow(TypeError);
    expect(rng.getState()).toEqual(before);
    expect(rng.interval(0)).toBe(0);
    expect(rng.interval(2 ** 32 - 1)).toBeLessThanOrEqual(2 ** 32 - 1);
  });
});

describe.each(backends)('the %s backend shuffles a training order like RandomState.shuffle', (name) => {
  const backend = resolveBackend(name);

  it.each([
    [1, 0, 0],
    [1, 1, 0],
    [1, 2, 0],
    [5, 3, 13],
    [0, 1000, 700],
    [42, 60000, 0],
    [4294967295, 60000, 623],
  ])('seed %i, n %i, after %i draws: same order, same state after, twice in a row', (seed, n, before) => {
    const a = new RandomState(seed);
    const b = new RandomState(seed);
    for (let i = 0; i < before; i++) {
      a.nextUint32();
      b.nextUint32();
    }
    const orderA = Int32Array.from({ length: n }, (_, k) => (k * 7919) % Math.max(n, 1));
    const orderB = orderA.slice();
    for (let epoch = 0; epoch < 2; epoch++) {
      backend.shuffleOrder(a, orderA);
      b.shuffle(orderB);
      expectSameBits(orderA, orderB, `epoch ${epoch}`);
      expect(a.getState()).toEqual(b.getState());
    }
    expect(a.randomSample()).toBe(b.randomSample());
  });
});

/** RandomState against numpy's legacy np.random.RandomState (test/fixtures/random.json). */
import { describe, expect, it } from 'vitest';
import { RandomState } from '../lib/index.js';
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
});

/**
 * The seed's NeuralNetMLP (numpy, test/fixtures/seed_small.json) reproduced by every backend in
 * float64: initial weights bit for bit, minibatch costs to 1e-12, final weights to 1e-10.
 */
import { describe, expect, it } from 'vitest';
import { NeuralNetMLP, RandomState, type MLPOptions } from '../lib/index.js';
import { backends } from './helpers/backends.js';
import { type SeedCase, seedSmallFixture } from './helpers/fixtures.js';
import { expectClose, expectSameBits, flatten, sigmoid } from './helpers/numeric.js';

const { cases } = seedSmallFixture();

function optionsOf(c: SeedCase, backend: 'js' | 'native'): MLPOptions {
  const k = c.config;
  return {
    nOutput: k.n_output,
    nFeatures: k.n_features,
    nHidden: k.n_hidden,
    l1: k.l1,
    l2: k.l2,
    epochs: k.epochs,
    eta: k.eta,
    alpha: k.alpha,
    decreaseConst: k.decrease_const,
    shuffle: k.shuffle,
    minibatches: k.minibatches,
    randomState: k.random_state,
    backend,
    dtype: 'float64',
  };
}

// Measured on both backends: costs within 6.6e-15 relative, final weights within 2.1e-14.
const COST_REL = 1e-12;
const WEIGHT_REL = 1e-10;
const WEIGHT_ABS = 1e-12;

describe('the fixture cases exercise what they claim', () => {
  it('has the four documented cases', () => {
    expect(cases.map((c) => c.name)).toEqual(['basic', 'l1_noshuffle', 'scaled', 'uneven']);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s: RandomState replays the seed draws and permutations', (_name, c) => {
    const k = c.config;
    const rng = new RandomState(k.random_state);
    const w1 = new Float64Array(k.n_hidden * (k.n_features + 1));
    const w2 = new Float64Array(k.n_output * (k.n_hidden + 1));
    rng.uniform(-1, 1, w1);
    rng.uniform(-1, 1, w2);
    expectSameBits(w1, flatten(c.w1_init), 'w1_init');
    expectSameBits(w2, flatten(c.w2_init), 'w2_init');
    expect(c.permutations.length).toBe(k.shuffle ? k.epochs : 0);
    for (const [e, perm] of c.permutations.entries()) expectSameBits(rng.permutation(c.X.length), perm, `permutation of epoch ${e + 1}`);
  });
});

describe.each(backends)('seed reproduction (%s backend, float64)', (backend) => {
  describe.each(cases.map((c) => [c.name, c] as const))('case %s', (_name, c) => {
    it('starts from the seed initial weights, bit for bit', () => {
      const model = new NeuralNetMLP(optionsOf(c, backend));
      expect(model.backend).toBe(backend);
      expect(model.layerSizes).toEqual([c.config.n_features, c.config.n_hidden, c.config.n_output]);
      const [w1, w2] = model.weights;
      expect([w1.rows, w1.cols]).toEqual([c.config.n_hidden, c.config.n_features + 1]);
      expect([w2.rows, w2.cols]).toEqual([c.config.n_output, c.config.n_hidden + 1]);
      expect(w1.data).toBeInstanceOf(Float64Array);
      expectSameBits(w1.data, flatten(c.w1_init), 'w1 before fit');
      expectSameBits(w2.data, flatten(c.w2_init), 'w2 before fit');
    });

    it('fitSync reproduces the costs, final weights, predict and the output layer', () => {
      const model = new NeuralNetMLP(optionsOf(c, backend));
      model.fitSync(c.X, c.y);
      const costs = model.costs;
      expect(costs.length).toBe(c.config.epochs * c.config.minibatches);
      expectClose(costs, c.cost, { rel: COST_REL }, 'costs');
      const [w1, w2] = model.weights;
      expectClose(w1.data, flatten(c.w1_final), { rel: WEIGHT_REL, abs: WEIGHT_ABS }, 'w1 after fit');
      expectClose(w2.data, flatten(c.w2_final), { rel: WEIGHT_REL, abs: WEIGHT_ABS }, 'w2 after fit');

      expect(Array.from(model.predict(c.X))).toEqual(c.predict);

      // Fixture z3 is n_output x n_samples; predictProba is n_samples x n_output = sigmoid(z3)^T.
      const proba = model.predictProba(c.X);
      expect([proba.rows, proba.cols]).toEqual([c.X.length, c.config.n_output]);
      const expected: number[] = [];
      for (let r = 0; r < c.X.length; r++) for (let o = 0; o < c.config.n_output; o++) expected.push(sigmoid(c.z3[o][r]));
      expectClose(proba.data, expected, { rel: 1e-9, abs: 1e-12 }, 'predictProba vs sigmoid(z3)^T');
    });

    it('gives the same results from a flat Float64Array and from the bytes when the pixels are raw', () => {
      const reference = new NeuralNetMLP(optionsOf(c, backend)).fitSync(c.X, c.y);
      const flat = { data: Float64Array.from(flatten(c.X)), rows: c.X.length, cols: c.config.n_features };
      const fromFlat = new NeuralNetMLP(optionsOf(c, backend)).fitSync(flat, Int32Array.from(c.y));
      expectSameBits(fromFlat.costs, reference.costs, 'costs from Float64Array');
      fromFlat.weights.forEach((w, l) => expectSameBits(w.data, reference.weights[l].data, `weights[${l}] from Float64Array`));
      if (!c.x_div255) {
        const bytes = { data: Uint8Array.from(flatten(c.X)), rows: c.X.length, cols: c.config.n_features };
        const fromBytes = new NeuralNetMLP(optionsOf(c, backend)).fitSync(bytes, Uint8Array.from(c.y));
        expectClose(fromBytes.costs, c.cost, { rel: COST_REL }, 'costs from Uint8Array');
        fromBytes.weights.forEach((w, l) =>
          expectClose(w.data, l === 0 ? flatten(c.w1_final) : flatten(c.w2_final), { rel: WEIGHT_REL, abs: WEIGHT_ABS }, `weights[${l}] from Uint8Array`),
        );
      }
    });
  });
});

/**
 * Training runs: progress reports, the learning-rate schedules, cancellation, concurrency,
 * repeated fits and determinism.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NeuralNetMLP, learningRates, type EpochInfo, type MLPOptions } from '../lib/index.js';
import { backends, hasNative } from './helpers/backends.js';
import { expectSameBits, randomDataset, rejection } from './helpers/numeric.js';

const { X, y } = randomDataset(21, 60, 8, 3);

function options(backend: 'js' | 'native', extra: Partial<MLPOptions> = {}): MLPOptions {
  return { nOutput: 3, nFeatures: 8, nHidden: [6, 4], l2: 0.01, epochs: 5, eta: 0.05, alpha: 0.1, decreaseConst: 0.1, minibatches: 3, randomState: 17, backend, ...extra };
}

function expectSameWeights(a: NeuralNetMLP, b: NeuralNetMLP, what: string): void {
  const wb = b.weights;
  a.weights.forEach((w, l) => expectSameBits(w.data, wb[l].data, `${what}: weights[${l}]`));
}

describe('learningRates', () => {
  it("'compounding' divides the previous rate by 1 + d * i (the seed's code)", () => {
    const rates = learningRates(0.1, 0.5, 4, 'compounding');
    expect(rates).toBeInstanceOf(Float64Array);
    expectSameBits(rates, [0.1, 0.1 / 1.5, 0.1 / 1.5 / 2, 0.1 / 1.5 / 2 / 2.5], 'compounding');
  });

  it("'inverse-time' is eta0 / (1 + d * i) (the seed's docstring)", () => {
    expectSameBits(learningRates(0.1, 0.5, 4, 'inverse-time'), [0.1, 0.1 / 1.5, 0.1 / 2, 0.1 / 2.5], 'inverse-time');
  });

  it('both are constant with decreaseConst 0 and agree on the first two epochs', () => {
    expectSameBits(learningRates(0.3, 0, 3, 'compounding'), [0.3, 0.3, 0.3], 'd = 0');
    expectSameBits(learningRates(0.3, 0, 3, 'inverse-time'), [0.3, 0.3, 0.3], 'd = 0');
    const a = learningRates(0.3, 0.2, 2, 'compounding');
    const b = learningRates(0.3, 0.2, 2, 'inverse-time');
    expectSameBits(a, b, 'first two epochs');
  });
});

describe.each(backends)('fit (%s backend)', (backend) => {
  it('onEpoch reports epochs 1..N with the epoch cost, eta and elapsed time', async () => {
    const infos: EpochInfo[] = [];
    const model = new NeuralNetMLP(options(backend, { epochs: 6, minibatches: 4 }));
    const result = await model.fit(X, y, { onEpoch: (info) => infos.push({ ...info }) });
    expect(result).toBe(model);
    expect(infos.map((i) => i.epoch)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(infos.every((i) => i.epochs === 6)).toBe(true);
    const costs = model.costs;
    expect(costs.length).toBe(6 * 4);
    const rates = learningRates(0.05, 0.1, 6, 'compounding');
    infos.forEach((info, e) => {
      const mean = (costs[4 * e] + costs[4 * e + 1] + costs[4 * e + 2] + costs[4 * e + 3]) / 4;
      expect(info.cost).toBeCloseTo(mean, 12);
      expect(info.eta).toBe(rates[e]);
      expect(info.elapsedMs).toBeGreaterThanOrEqual(0);
      if (e > 0) expect(info.elapsedMs).toBeGreaterThanOrEqual(infos[e - 1].elapsedMs);
    });
    expect(infos[0].eta).toBe(0.05);
  });

  it('costs has epochs * minibatches entries, for fit and fitSync alike, and is a copy', async () => {
    for (const [epochs, minibatches] of [
      [1, 1],
      [3, 7],
      [2, 60],
    ]) {
      const a = new NeuralNetMLP(options(backend, { epochs, minibatches }));
      expect(a.costs.length).toBe(0);
      a.fitSync(X, y);
      expect(a.costs.length).toBe(epochs * minibatches);
      const b = new NeuralNetMLP(options(backend, { epochs, minibatches }));
      await b.fit(X, y);
      expectSameBits(b.costs, a.costs, `fit vs fitSync costs (${epochs} x ${minibatches})`);
      expectSameWeights(b, a, 'fit vs fitSync');
      const copy = a.costs;
      copy[0] = -1;
      expect(a.costs[0]).not.toBe(-1);
    }
  });

  it("the schedule reaches the kernels: 'inverse-time' reports its rates and trains differently", async () => {
    const etas: Record<string, number[]> = {};
    const models: Record<string, NeuralNetMLP> = {};
    for (const etaSchedule of ['compounding', 'inverse-time'] as const) {
      etas[etaSchedule] = [];
      models[etaSchedule] = new NeuralNetMLP(options(backend, { etaSchedule, decreaseConst: 0.5, epochs: 4 }));
      await models[etaSchedule].fit(X, y, { onEpoch: (i) => etas[etaSchedule].push(i.eta) });
      expectSameBits(etas[etaSchedule], learningRates(0.05, 0.5, 4, etaSchedule), `${etaSchedule} etas`);
    }
    const a = models['compounding'].costs;
    const b = models['inverse-time'].costs;
    // Epochs 1 and 2 use the same rates; from epoch 3 they differ.
    expectSameBits(a.subarray(0, 2 * 3 + 1), b.subarray(0, 2 * 3 + 1), 'costs up to the first step of epoch 3');
    expect(a[a.length - 1]).not.toBe(b[b.length - 1]);
  });

  it('an already-aborted signal rejects with AbortError and leaves the model as it was', async () => {
    const model = new NeuralNetMLP(options(backend));
    const before = model.weights;
    const controller = new AbortController();
    controller.abort();
    const onEpoch = () => expect.fail('no epoch may run');
    const error = await rejection(model.fit(X, y, { signal: controller.signal, onEpoch }));
    expect(error.name).toBe('AbortError');
    model.weights.forEach((w, l) => expectSameBits(w.data, before[l].data, `weights[${l}]`));
    expect(model.predict(X).length).toBe(X.rows);
    // and it can still be trained
    await model.fit(X, y);
    expect(model.costs.length).toBe(5 * 3);
  });

  it('aborting from onEpoch after epoch 2 stops there: AbortError, two epochs kept, model usable', async () => {
    const model = new NeuralNetMLP(options(backend, { epochs: 10 }));
    const controller = new AbortController();
    const seen: number[] = [];
    const error = await rejection(
      model.fit(X, y, {
        signal: controller.signal,
        onEpoch: (info) => {
          seen.push(info.epoch);
          if (info.epoch === 2) controller.abort();
        },
      }),
    );
    expect(error.name).toBe('AbortError');
    expect(seen).toEqual([1, 2]);
    expect(model.costs.length).toBe(2 * 3);
    // The weights are those after two epochs, exactly.
    const twoEpochs = new NeuralNetMLP(options(backend, { epochs: 2 })).fitSync(X, y);
    expectSameWeights(model, twoEpochs, 'aborted after 2 epochs vs epochs: 2');
    expectSameBits(model.costs, twoEpochs.costs, 'costs');
    const p = model.predictProba(X);
    expect(p.data.every((v) => v > 0 && v < 1)).toBe(true);
    // not left busy
    expect(() => model.fitSync(X, y)).not.toThrow();
  });

  it('an abort reason that is not an AbortError becomes the cause of an AbortError', async () => {
    const model = new NeuralNetMLP(options(backend));
    const controller = new AbortController();
    const reason = new Error('shutting down');
    controller.abort(reason);
    const error = await rejection(model.fit(X, y, { signal: controller.signal }));
    expect(error.name).toBe('AbortError');
    expect((error as Error & { cause?: unknown }).cause).toBe(reason);
  });

  it('an exception thrown by onEpoch ends the fit with that exception and leaves the model usable', async () => {
    const model = new NeuralNetMLP(options(backend, { epochs: 4 }));
    const boom = new Error('boom');
    const onEpoch = (info: EpochInfo) => {
      if (info.epoch === 2) throw boom;
    };
    expect(await rejection(model.fit(X, y, { onEpoch }))).toBe(boom);
    expect(model.costs.length).toBe(2 * 3);
    expect(() => model.fitSync(X, y, { onEpoch })).toThrow(boom);
    await expect(model.fit(X, y)).resolves.toBe(model);
  });

  it('onEpoch may predict with the weights of the epoch just finished', () => {
    const seen: number[][] = [];
    const model = new NeuralNetMLP(options(backend, { epochs: 3 }));
    model.fitSync(X, y, { onEpoch: () => seen.push(Array.from(model.predictProba(X).data)) });
    expect(seen.length).toBe(3);
    expectSameBits(seen[2], model.predictProba(X).data, 'after the last epoch');
    const two = new NeuralNetMLP(options(backend, { epochs: 2 })).fitSync(X, y);
    expectSameBits(seen[1], two.predictProba(X).data, 'after epoch 2');
  });

  it('in an asynchronous fit, onEpoch sees the weights of the epoch it reports (e.g. to save a checkpoint)', async () => {
    const seen: number[][] = [];
    const saved: number[][] = [];
    const model = new NeuralNetMLP(options(backend, { epochs: 3 }));
    await model.fit(X, y, {
      onEpoch: () => {
        seen.push(Array.from(model.predictProba(X).data));
        saved.push(model.toJSON().weights[0].data);
      },
    });
    expect(seen.length).toBe(3);
    for (const epochs of [1, 2, 3]) {
      const reference = new NeuralNetMLP(options(backend, { epochs })).fitSync(X, y);
      expectSameBits(saved[epochs - 1], reference.weights[0].data, `toJSON in onEpoch after epoch ${epochs}`);
      expectSameBits(seen[epochs - 1], reference.predictProba(X).data, `predictProba in onEpoch after epoch ${epochs}`);
    }
  });

  it('a second fit while one runs is rejected with ERR_BUSY; the first completes', async () => {
    const model = new NeuralNetMLP(options(backend, { epochs: 4 }));
    const first = model.fit(X, y);
    const error = await rejection(model.fit(X, y));
    expect(error.code).toBe('ERR_BUSY');
    expect(() => model.fitSync(X, y)).toThrow(expect.objectContaining({ code: 'ERR_BUSY' }));
    await expect(first).resolves.toBe(model);
    expect(model.costs.length).toBe(4 * 3);
    const reference = new NeuralNetMLP(options(backend, { epochs: 4 })).fitSync(X, y);
    expectSameWeights(model, reference, 'the first fit was not disturbed');
    // free again
    await expect(model.fit(X, y)).resolves.toBe(model);
  });

  it('a second fit starts again from options.eta (no shrunk eta carried over) and from zero momentum', async () => {
    const epochs = 3;
    const extra = { decreaseConst: 0.5, epochs, shuffle: false };
    const a = new NeuralNetMLP(options(backend, extra));
    const first: number[] = [];
    await a.fit(X, y, { onEpoch: (i) => first.push(i.eta) });
    // A fresh model from the same weights must train exactly like a's second fit.
    const fresh = NeuralNetMLP.fromJSON(a.toJSON(), { backend });
    const second: number[] = [];
    await a.fit(X, y, { onEpoch: (i) => second.push(i.eta) });
    expect(second[0]).toBe(a.options.eta);
    expect(second[0]).toBe(0.05);
    expectSameBits(second, first, 'etas of the second fit');
    fresh.fitSync(X, y);
    expect(a.costs.length).toBe(epochs * 3);
    expectSameBits(a.costs, fresh.costs, 'second fit vs a fresh fit from the same weights');
    expectSameWeights(a, fresh, 'second fit vs a fresh fit from the same weights');
  });

  it('the same randomState gives identical results, run after run; another seed does not', () => {
    const run = (randomState: number) => new NeuralNetMLP(options(backend, { randomState })).fitSync(X, y);
    const a = run(17);
    const b = run(17);
    expectSameBits(a.costs, b.costs, 'costs');
    expectSameWeights(a, b, 'same seed');
    expectSameBits(a.predictProba(X).data, b.predictProba(X).data, 'predictProba');
    const c = run(18);
    expect(c.costs[0]).not.toBe(a.costs[0]);
  });

  it('randomState null draws different weights each time', () => {
    const a = new NeuralNetMLP(options(backend, { randomState: null }));
    const b = new NeuralNetMLP(options(backend, { randomState: null }));
    expect(a.options.randomState).toBeNull();
    expect(a.weights[0].data[0]).not.toBe(b.weights[0].data[0]);
  });

  it('without shuffling, two models with the same weights train identically', () => {
    const model = new NeuralNetMLP(options(backend, { shuffle: false, epochs: 1, alpha: 0, decreaseConst: 0 }));
    const copy = NeuralNetMLP.fromJSON(model.toJSON(), { backend });
    model.fitSync(X, y);
    copy.fitSync(X, y);
    expectSameWeights(model, copy, 'shuffle false is deterministic without a seed stream');
  });
});

describe.each(backends)('partialFit (%s backend)', (backend) => {
  const big = randomDataset(31, 2000, 50, 3);
  const opts = (extra: Partial<MLPOptions> = {}): MLPOptions => ({
    nOutput: 3,
    nFeatures: 50,
    nHidden: 20,
    eta: 0.1,
    decreaseConst: 0.5,
    minibatches: 50,
    randomState: 1,
    epochs: 2,
    backend,
    ...extra,
  });

  it('continues the schedule after fit: the epochs of fit + partialFit get the rates of one longer fit', async () => {
    const etas: number[] = [];
    const epochCosts: number[] = [];
    const model = new NeuralNetMLP(opts());
    const record = (i: EpochInfo) => {
      etas.push(i.eta);
      epochCosts.push(i.cost);
    };
    await model.fit(big.X, big.y, { onEpoch: record });
    const afterFit = model.costs;
    await model.partialFit(big.X, big.y, { epochs: 2, onEpoch: record });
    expectSameBits(etas, learningRates(0.1, 0.5, 4, 'compounding'), 'etas');
    // fit's costs are kept, partialFit's follow them, and each epoch's are the ones it reported.
    const costs = model.costs;
    expect(costs.length).toBe(4 * 50);
    expectSameBits(costs.subarray(0, 2 * 50), afterFit, 'the costs of fit');
    for (let e = 0; e < 4; e++) {
      let sum = 0;
      for (let b = 0; b < 50; b++) sum += costs[e * 50 + b];
      expect(sum / 50, `epoch ${e + 1}'s mean cost`).toBe(epochCosts[e]);
    }
  });

  it('on a model that was never fitted, trains with options.eta (not 0)', async () => {
    for (const model of [new NeuralNetMLP(opts()), NeuralNetMLP.fromJSON(new NeuralNetMLP(opts()).toJSON(), { backend })]) {
      const etas: number[] = [];
      const before = model.weights[0].data.slice();
      await model.partialFit(big.X, big.y, { epochs: 2, onEpoch: (i) => etas.push(i.eta) });
      expectSameBits(etas, learningRates(0.1, 0.5, 2, 'compounding'), 'etas of partialFit on a fresh model');
      expect(model.weights[0].data.some((v, i) => v !== before[i]), 'the weights changed').toBe(true);
    }
  });

  it('an epoch cut short by an abort does not shrink the learning rate of the epoch that follows', async () => {
    const m = 50;
    const etas: number[] = [];
    const model = new NeuralNetMLP(opts());
    await model.fit(big.X, big.y, { onEpoch: (i) => etas.push(i.eta) });
    const controller = new AbortController();
    const run = model.partialFit(big.X, big.y, { epochs: 1, signal: controller.signal, onEpoch: (i) => etas.push(i.eta) });
    controller.abort(); // while the first minibatches of epoch 3 run
    await run.catch((error: Error) => expect(error.name).toBe('AbortError'));
    const completed = Math.floor(model.costs.length / m); // usually 2: epoch 3 was cut short
    await model.partialFit(big.X, big.y, { epochs: 1, onEpoch: (i) => etas.push(i.eta) });
    expectSameBits(etas, learningRates(0.1, 0.5, completed + 1, 'compounding'), 'etas of the completed epochs');
  });
});

describe('backend selection', () => {
  it("'auto' (the default) picks native when the addon loads, unless NEURALNET_MLP_BACKEND=js", () => {
    const model = new NeuralNetMLP({ nOutput: 3, nFeatures: 8, nHidden: 2, randomState: 1 });
    const forcedJs = process.env.NEURALNET_MLP_BACKEND === 'js';
    expect(model.options.backend).toBe('auto');
    expect(model.backend).toBe(hasNative && !forcedJs ? 'native' : 'js');
    expect(new NeuralNetMLP({ nOutput: 3, nFeatures: 8, backend: 'js' }).backend).toBe('js');
  });

  // 'native' without the addon (ERR_NATIVE_UNAVAILABLE) is tested in loader.test.ts, in a process
  // pointed at a missing addon.
});

describe.skipIf(!hasNative)('native threads', () => {
  it('threads 1 and 2 give bit-identical weights, costs and predictions', async () => {
    const big = randomDataset(5, 3000, 60, 10);
    const run = async (threads: number) => {
      const model = new NeuralNetMLP({ nOutput: 10, nFeatures: 60, nHidden: [48, 24], l1: 0.001, l2: 0.01, epochs: 2, eta: 0.01, alpha: 0.1, minibatches: 3, randomState: 3, backend: 'native', threads });
      expect(model.options.threads).toBe(threads);
      await model.fit(big.X, big.y);
      return model;
    };
    const one = await run(1);
    const two = await run(2);
    const four = await run(4);
    expectSameBits(two.costs, one.costs, 'costs, threads 2 vs 1');
    expectSameWeights(two, one, 'threads 2 vs 1');
    expectSameWeights(four, one, 'threads 4 vs 1');
    expectSameBits(two.predictProba(big.X).data, one.predictProba(big.X).data, 'predictProba, threads 2 vs 1');
    const loaded = NeuralNetMLP.fromJSON(one.toJSON(), { backend: 'native', threads: 2 });
    expect(loaded.options.threads).toBe(2);
    expectSameBits(loaded.predictProba(big.X).data, one.predictProba(big.X).data, 'predictProba of a model loaded with threads 2');
  });

  it('on sparse input (layer 1 split by feature blocks across tasks), any thread count gives the same bits', () => {
    // 300 byte features (five 64-feature blocks), ~20% non-zero, as MNIST's pixels. Large l1 and
    // l2 make the regularisation sums (added by feature block) a large share of the costs, so a
    // sum whose order followed the tasks would show in their last bits.
    const rows = 3000;
    const cols = 300;
    const { X: noise, y } = randomDataset(8, rows, cols, 10);
    const X = { data: Uint8Array.from(noise.data, (v, i) => (v < 0.2 ? 1 + ((i * 31) % 255) : 0)), rows, cols };
    const run = (threads: number) =>
      new NeuralNetMLP({ nOutput: 10, nFeatures: cols, nHidden: 48, l1: 0.5, l2: 0.5, epochs: 2, eta: 1e-4, alpha: 0.1, minibatches: 3, randomState: 3, backend: 'native', threads }).fitSync(X, y);
    const one = run(1);
    expect(one.costs.every(Number.isFinite)).toBe(true);
    for (const threads of [2, 3, 4]) {
      const other = run(threads);
      expectSameBits(other.costs, one.costs, `costs, threads ${threads} vs 1`);
      expectSameWeights(other, one, `threads ${threads} vs 1`);
    }
  });
});

describe.each(backends)('a model whose training diverged (%s backend)', (backend) => {
  const { X, y } = randomDataset(21, 30, 5, 3);

  it('is not saved: NaN weights would make a file load rejects', () => {
    const model = new NeuralNetMLP({ nOutput: 3, nFeatures: 5, nHidden: 4, epochs: 3, eta: 1e300, l2: 1e300, randomState: 2, backend });
    model.fitSync(X, y);
    expect(model.weights.some((w) => w.data.some((v) => !Number.isFinite(v)))).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'neuralnet-mlp-diverged-'));
    try {
      for (const name of ['model.json', 'model.safetensors']) {
        const path = join(dir, name);
        const error = (() => {
          try {
            model.saveSync(path);
          } catch (e) {
            return e as Error & { code?: string };
          }
          return null;
        })();
        expect(error, name).toBeInstanceOf(RangeError);
        expect(error?.code).toBe('ERR_OUT_OF_RANGE');
        expect(error?.message).toMatch(/weights to save \(layer \d, row \d+, column \d+\)/);
        expect(existsSync(path)).toBe(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with finite weights but an infinite last cost, saves a file that loads', () => {
    const model = new NeuralNetMLP({ nOutput: 3, nFeatures: 5, nHidden: 4, epochs: 1, eta: 5e-324, l2: 1e308, randomState: 2, backend });
    model.fitSync(X, y);
    expect(model.costs.at(-1)).toBe(Infinity);
    for (const bytes of [new TextEncoder().encode(JSON.stringify(model.toJSON())), model.toSafetensors()]) {
      const loaded = NeuralNetMLP.loadSync(bytes);
      expect(loaded.predict(X)).toEqual(model.predict(X));
    }
  });
});

/**
 * Argument validation at the API boundary: every bad input throws TypeError (wrong type) or
 * RangeError (right type, bad value) with a `code` and a message naming the argument; inputs are
 * never modified. Then the raw addon, called directly with garbage, must throw and never crash.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NeuralNetMLP, type MLPOptions } from '../lib/index.js';
import { backends } from './helpers/backends.js';
import { expectArgError, expectSameBits, randomDataset, rejection, thrown } from './helpers/numeric.js';

const TYPE = 'ERR_INVALID_ARG_TYPE';
const RANGE = 'ERR_OUT_OF_RANGE';
const VALUE = 'ERR_INVALID_ARG_VALUE';

const nFeatures = 4;
const nOutput = 3;
const { X: goodX, y: goodY } = randomDataset(3, 12, nFeatures, nOutput);

type OptionCase = [label: string, overrides: Record<string, unknown>, kind: typeof TypeError | typeof RangeError, code: string, name: string];

const optionCases: OptionCase[] = [
  ['unknown option key', { nHiden: 5 }, TypeError, TYPE, 'options.nHiden'],
  ['nOutput 0', { nOutput: 0 }, RangeError, RANGE, 'options.nOutput'],
  ['nOutput 1.5', { nOutput: 1.5 }, RangeError, RANGE, 'options.nOutput'],
  ["nOutput '10'", { nOutput: '10' }, TypeError, TYPE, 'options.nOutput'],
  ['nOutput NaN', { nOutput: NaN }, RangeError, RANGE, 'options.nOutput'],
  ['nFeatures missing', { nFeatures: undefined }, TypeError, TYPE, 'options.nFeatures'],
  ['nFeatures -3', { nFeatures: -3 }, RangeError, RANGE, 'options.nFeatures'],
  ['nHidden []', { nHidden: [] }, RangeError, RANGE, 'options.nHidden'],
  ['nHidden [0]', { nHidden: [0] }, RangeError, RANGE, 'options.nHidden[0]'],
  ['nHidden [4, 2.5]', { nHidden: [4, 2.5] }, RangeError, RANGE, 'options.nHidden[1]'],
  ["nHidden ['4']", { nHidden: ['4'] }, TypeError, TYPE, 'options.nHidden[0]'],
  // A hole is skipped by Array.prototype.map, so it would become a layer of 0 units.
  // eslint-disable-next-line no-sparse-arrays
  ['nHidden with a hole [4, , 3]', { nHidden: [4, , 3] }, TypeError, TYPE, 'options.nHidden[1]'],
  ['nHidden -1', { nHidden: -1 }, RangeError, RANGE, 'options.nHidden'],
  ["nHidden '30'", { nHidden: '30' }, TypeError, TYPE, 'options.nHidden'],
  ['epochs 0', { epochs: 0 }, RangeError, RANGE, 'options.epochs'],
  ['epochs -1', { epochs: -1 }, RangeError, RANGE, 'options.epochs'],
  ['epochs NaN', { epochs: NaN }, RangeError, RANGE, 'options.epochs'],
  ['eta 0', { eta: 0 }, RangeError, RANGE, 'options.eta'],
  ['eta Infinity', { eta: Infinity }, RangeError, RANGE, 'options.eta'],
  ["eta '0.1'", { eta: '0.1' }, TypeError, TYPE, 'options.eta'],
  ['l1 -0.5', { l1: -0.5 }, RangeError, RANGE, 'options.l1'],
  ['l2 -1', { l2: -1 }, RangeError, RANGE, 'options.l2'],
  ['l2 NaN', { l2: NaN }, RangeError, RANGE, 'options.l2'],
  ['alpha -1', { alpha: -1 }, RangeError, RANGE, 'options.alpha'],
  ['decreaseConst Infinity', { decreaseConst: Infinity }, RangeError, RANGE, 'options.decreaseConst'],
  ["etaSchedule 'linear'", { etaSchedule: 'linear' }, RangeError, RANGE, 'options.etaSchedule'],
  ["shuffle 'yes'", { shuffle: 'yes' }, TypeError, TYPE, 'options.shuffle'],
  ['minibatches 0', { minibatches: 0 }, RangeError, RANGE, 'options.minibatches'],
  ['minibatches 2.5', { minibatches: 2.5 }, RangeError, RANGE, 'options.minibatches'],
  // Not blamed on epochs: "at most 0 epochs of 2147483648 minibatches for options.epochs".
  ['minibatches 2**31', { minibatches: 2 ** 31 }, RangeError, RANGE, 'options.minibatches'],
  ['randomState -1', { randomState: -1 }, RangeError, RANGE, 'options.randomState'],
  ['randomState 2**32', { randomState: 2 ** 32 }, RangeError, RANGE, 'options.randomState'],
  ['randomState 1.5', { randomState: 1.5 }, RangeError, RANGE, 'options.randomState'],
  ["randomState '1'", { randomState: '1' }, TypeError, TYPE, 'options.randomState'],
  ["backend 'gpu'", { backend: 'gpu' }, RangeError, RANGE, 'options.backend'],
  ["dtype 'float16'", { dtype: 'float16' }, RangeError, RANGE, 'options.dtype'],
  ['threads 0', { threads: 0 }, RangeError, RANGE, 'options.threads'],
  ['threads 1.5', { threads: 1.5 }, RangeError, RANGE, 'options.threads'],
];

/** Bad feature matrices for a model with 4 features: [label, X, class, code, name in message]. */
type XCase = [label: string, X: unknown, kind: typeof TypeError | typeof RangeError, code: string, name: string | RegExp];

function badXCases(): XCase[] {
  const f64 = (n: number) => new Float64Array(n).fill(0.5);
  const withValue = (data: Float64Array | Float32Array, index: number, v: number) => {
    data[index] = v;
    return data;
  };
  const rows = [
    [0.1, 0.2, 0.3, 0.4],
    [0.5, 0.6, 0.7, 0.8],
  ];
  return [
    ['a number', 42, TypeError, TYPE, 'X'],
    ['a string', 'matrix', TypeError, TYPE, 'X'],
    ['null', null, TypeError, TYPE, 'X'],
    ['a bare Float64Array', f64(8), TypeError, TYPE, 'X'],
    ['an object without data', { rows: 2, cols: 4 }, TypeError, TYPE, 'X'],
    ['data an Int16Array', { data: new Int16Array(8), rows: 2, cols: 4 }, TypeError, TYPE, 'X.data'],
    ['data a plain array', { data: [1, 2, 3, 4, 5, 6, 7, 8], rows: 2, cols: 4 }, TypeError, TYPE, 'X.data'],
    ['data a Uint8ClampedArray', { data: new Uint8ClampedArray(8), rows: 2, cols: 4 }, TypeError, TYPE, 'X.data'],
    ["rows '2'", { data: f64(8), rows: '2', cols: 4 }, TypeError, TYPE, 'X.rows'],
    ['rows 0', { data: f64(0), rows: 0, cols: 4 }, RangeError, RANGE, 'X.rows'],
    ['rows 1.5', { data: f64(8), rows: 1.5, cols: 4 }, RangeError, RANGE, 'X.rows'],
    // The addon counts rows in 32-bit signed integers.
    ['rows 2**31', { data: f64(8), rows: 2 ** 31, cols: 4 }, RangeError, RANGE, 'X.rows'],
    ['a DataView row', [new DataView(new ArrayBuffer(32))], TypeError, TYPE, 'X[0]'],
    ['rows * cols != data.length', { data: f64(9), rows: 2, cols: 4 }, RangeError, VALUE, 'X.data'],
    ['cols != nFeatures (typed)', { data: f64(10), rows: 2, cols: 5 }, RangeError, VALUE, /X.*4 columns/],
    ['cols != nFeatures (rows)', [[1, 2, 3]], RangeError, VALUE, /X.*4 columns/],
    ['NaN in a Float64Array', { data: withValue(f64(8), 6, NaN), rows: 2, cols: 4 }, RangeError, RANGE, 'X (row 1, column 2)'],
    ['Infinity in a Float64Array', { data: withValue(f64(8), 1, Infinity), rows: 2, cols: 4 }, RangeError, RANGE, 'X (row 0, column 1)'],
    ['-Infinity in a Float32Array', { data: withValue(new Float32Array(8), 7, -Infinity), rows: 2, cols: 4 }, RangeError, RANGE, 'X (row 1, column 3)'],
    ['NaN in number[][]', [rows[0], [0.5, 0.6, NaN, 0.8]], RangeError, RANGE, 'X[1][2]'],
    ['Infinity in number[][]', [[Infinity, 0.2, 0.3, 0.4]], RangeError, RANGE, 'X[0][0]'],
    ['a string in number[][]', [rows[0], [0.5, '0.6', 0.7, 0.8]], TypeError, TYPE, 'X[1][1]'],
    ['ragged number[][]', [rows[0], [0.5, 0.6, 0.7]], RangeError, VALUE, 'X[1]'],
    ['a row that is not an array', [rows[0], 7], TypeError, TYPE, 'X[1]'],
    ['empty []', [], RangeError, RANGE, 'X'],
    ['[[]]', [[]], RangeError, RANGE, 'X[0]'],
  ];
}

type YCase = [label: string, y: unknown, kind: typeof TypeError | typeof RangeError, code: string, name: string];

const badYCases: YCase[] = [
  ['wrong length', [0, 1, 2], RangeError, VALUE, 'y'],
  ['label >= nOutput', Int32Array.from([0, 1, 3, 0, 1, 2, 0, 1, 2, 0, 1, 2]), RangeError, RANGE, 'y[2]'],
  ['negative label', [0, 1, 2, 0, -1, 2, 0, 1, 2, 0, 1, 2], RangeError, RANGE, 'y[4]'],
  ['label 1.5', [0, 1, 2, 0, 1, 2, 1.5, 1, 2, 0, 1, 2], RangeError, RANGE, 'y[6]'],
  ['label NaN', [0, 1, 2, 0, 1, 2, 0, NaN, 2, 0, 1, 2], RangeError, RANGE, 'y[7]'],
  ['a string label', [0, '1', 2, 0, 1, 2, 0, 1, 2, 0, 1, 2], TypeError, TYPE, 'y[1]'],
  ['a Float64Array', new Float64Array(12), TypeError, TYPE, 'y'],
  ['a Uint16Array', new Uint16Array(12), TypeError, TYPE, 'y'],
  ['a string', '012012012012', TypeError, TYPE, 'y'],
  ['undefined', undefined, TypeError, TYPE, 'y'],
];

describe.each(backends)('argument validation (%s backend)', (backend) => {
  const base: MLPOptions = { nOutput, nFeatures, nHidden: 5, epochs: 2, minibatches: 2, randomState: 1, backend };
  const make = (extra: Record<string, unknown> = {}) => new NeuralNetMLP({ ...base, ...extra } as MLPOptions);

  describe('constructor options', () => {
    it.each(optionCases)('%s', (_label, overrides, kind, code, name) => {
      expectArgError(thrown(() => make(overrides)), kind, code, name);
    });

    it('options that are not an object', () => {
      for (const bad of [undefined, null, 42, 'options', [base]]) {
        expectArgError(thrown(() => new NeuralNetMLP(bad as unknown as MLPOptions)), TypeError, TYPE, 'options');
      }
    });

    it('a layer too large for 32-bit indices is a RangeError', () => {
      expectArgError(thrown(() => make({ nFeatures: 2 ** 24, nHidden: 2 ** 8 })), RangeError, RANGE, 'layer 1');
    });

    it('valid edge values are accepted', () => {
      expect(() => make({ randomState: 0 })).not.toThrow();
      expect(() => make({ randomState: 2 ** 32 - 1 })).not.toThrow();
      expect(() => make({ randomState: null })).not.toThrow();
      expect(() => make({ nOutput: 1, nHidden: [1, 1] })).not.toThrow();
      expect(() => make({ l1: 0, l2: 0, alpha: 0, decreaseConst: 0 })).not.toThrow();
      expect(() => make({ threads: 1 })).not.toThrow();
    });
  });

  describe('fit / fitSync: X', () => {
    it.each(badXCases())('%s', async (_label, X, kind, code, name) => {
      const model = make();
      const before = model.weights;
      expectArgError(thrown(() => model.fitSync(X as never, goodY)), kind, code, name);
      expectArgError(await rejection(model.fit(X as never, goodY)), kind, code, name);
      model.weights.forEach((w, l) => expectSameBits(w.data, before[l].data, `weights[${l}] untouched`));
    });

    it('load and loadSync name their argument `source` and say it may be bytes', async () => {
      for (const bad of [new ArrayBuffer(4), '', 7]) {
        const sync = thrown(() => NeuralNetMLP.loadSync(bad as never));
        expectArgError(sync, TypeError, TYPE, 'source');
        expect(sync.message).toContain('Uint8Array');
        expectArgError(await rejection(NeuralNetMLP.load(bad as never)), TypeError, TYPE, 'source');
      }
    });

    it('partialFit with more epochs than the costs can be kept for is a RangeError naming options.epochs', async () => {
      // It used to fail inside with "Invalid typed array length", without a code.
      const model = make();
      expectArgError(await rejection(model.partialFit(goodX, goodY, { epochs: 2 ** 40 })), RangeError, RANGE, 'options.epochs');
      await expect(model.partialFit(goodX, goodY, { epochs: 1 })).resolves.toBe(model);
    });

    it('minibatches > rows is a RangeError at fit', async () => {
      const model = make({ minibatches: 13 });
      expectArgError(thrown(() => model.fitSync(goodX, goodY)), RangeError, RANGE, 'options.minibatches');
      expectArgError(await rejection(model.fit(goodX, goodY)), RangeError, RANGE, 'options.minibatches');
      expect(() => make({ minibatches: 12, epochs: 1 }).fitSync(goodX, goodY)).not.toThrow();
    });
  });

  describe('fit / fitSync: y', () => {
    it.each(badYCases)('%s', async (_label, y, kind, code, name) => {
      const model = make();
      expectArgError(thrown(() => model.fitSync(goodX, y as never)), kind, code, name);
      expectArgError(await rejection(model.fit(goodX, y as never)), kind, code, name);
    });
  });

  describe('fit options', () => {
    it('rejects bad fit options', async () => {
      const model = make();
      expectArgError(thrown(() => model.fitSync(goodX, goodY, { onEpoch: 5 } as never)), TypeError, TYPE, 'options.onEpoch');
      expectArgError(thrown(() => model.fitSync(goodX, goodY, { onEpohc: () => {} } as never)), TypeError, TYPE, 'options.onEpohc');
      expectArgError(thrown(() => model.fitSync(goodX, goodY, 'fast' as never)), TypeError, TYPE, 'options');
      expectArgError(await rejection(model.fit(goodX, goodY, { signal: {} as AbortSignal })), TypeError, TYPE, 'options.signal');
    });
  });

  describe('predict / predictProba / predictWithProba / gradient: X', () => {
    it.each(badXCases())('%s', async (_label, X, kind, code, name) => {
      const model = make();
      expectArgError(thrown(() => model.predict(X as never)), kind, code, name);
      expectArgError(thrown(() => model.predictProba(X as never)), kind, code, name);
      expectArgError(thrown(() => model.predictWithProba(X as never)), kind, code, name);
      expectArgError(await rejection(model.predictWithProbaAsync(X as never)), kind, code, name);
      expectArgError(thrown(() => model.gradient(X as never, goodY)), kind, code, name);
    });

    it('a float32 model rejects float64 input beyond float32 range (it would turn into Infinity, the results into NaN)', async () => {
      const model = make({ dtype: 'float32' });
      const data = new Float64Array(3 * nFeatures).fill(0.5);
      data[nFeatures + 2] = -1e39;
      const X = { data, rows: 3, cols: nFeatures };
      expectArgError(thrown(() => model.predict(X)), RangeError, RANGE, 'X (row 1, column 2)');
      expectArgError(thrown(() => model.fitSync(X, goodY.slice(0, 3))), RangeError, RANGE, 'X (row 1, column 2)');
      expectArgError(await rejection(model.predictAsync(X)), RangeError, RANGE, 'X (row 1, column 2)');
      data[nFeatures + 2] = -3.4028234663852886e38;
      expect(model.predict(X)).toHaveLength(3);
      expect(make().predict({ data: new Float64Array(nFeatures).fill(1e39), rows: 1, cols: nFeatures })).toHaveLength(1);
    });

    it('a float32 model reports the first value that is non-finite or beyond float32 range in large float64 input, and accepts the rest', () => {
      // The range and finiteness checks are one pass: the first bad element is named, whichever kind.
      const model = make({ dtype: 'float32' });
      const rows = 1000;
      const n = rows * nFeatures;
      const FLOAT32_MAX = 3.4028234663852886e38;
      const beyond = [1e39, -FLOAT32_MAX * (1 + 2 ** -52), Number.MAX_VALUE];
      const where = (at: number) => `X (row ${Math.floor(at / nFeatures)}, column ${at % nFeatures})`;
      for (const at of [0, 1, 3, 4, 31, 32, 33, 127, 128, 2047, n - 33, n - 2, n - 1]) {
        for (const big of beyond) {
          const data = new Float64Array(n).fill(0.5);
          data[at] = big;
          if (at + 7 < n) data[at + 7] = NaN;
          const error = thrown(() => model.predict({ data, rows, cols: nFeatures }));
          expectArgError(error, RangeError, RANGE, where(at));
          expect((error as Error).message).toContain('a float32 model can hold');
        }
        const data = new Float64Array(n).fill(0.5);
        data[at] = -Infinity;
        if (at + 7 < n) data[at + 7] = 1e39;
        const error = thrown(() => model.predict({ data, rows, cols: nFeatures }));
        expectArgError(error, RangeError, RANGE, where(at));
        expect((error as Error).message).toContain('a finite number');
      }
      const edge = new Float64Array(n).fill(0.25);
      [FLOAT32_MAX, -FLOAT32_MAX, Number.MIN_VALUE, -0].forEach((v, i) => (edge[i * 977] = v));
      expect(model.predict({ data: edge, rows, cols: nFeatures })).toHaveLength(rows);
      // Rows given as arrays are checked as they are copied, and named by their indices.
      const rowsIn = Array.from({ length: 3 }, () => new Array<number>(nFeatures).fill(0.5));
      rowsIn[2][1] = -1e39;
      expectArgError(thrown(() => model.predict(rowsIn)), RangeError, RANGE, 'X[2][1]');
      rowsIn[2][1] = -FLOAT32_MAX;
      expect(model.predict(rowsIn)).toHaveLength(3);
    });

    it('finds the first NaN or infinity anywhere in large float input, and accepts every finite value', () => {
      // 1,000 rows: the native scan tests whole vectors in blocks, then a tail one by one.
      const model = make();
      const rows = 1000;
      const n = rows * nFeatures;
      const positions = [0, 1, 3, 4, 31, 32, 33, 63, 64, 65, 127, 128, 2047, 2048, n - 33, n - 32, n - 2, n - 1];
      for (const Float of [Float64Array, Float32Array]) {
        for (const bad of [NaN, Infinity, -Infinity]) {
          for (const at of positions) {
            const data = new Float(n);
            data.fill(0.5);
            data[at] = bad;
            // A later non-finite value does not hide the first one.
            if (at + 7 < n) data[at + 7] = NaN;
            const where = `X (row ${Math.floor(at / nFeatures)}, column ${at % nFeatures})`;
            expectArgError(thrown(() => model.predict({ data, rows, cols: nFeatures })), RangeError, RANGE, where);
          }
        }
        const finite = new Float(n).fill(0.25);
        const extremes = Float === Float64Array ? [Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, -0] : [3.4028234663852886e38, -3.4028234663852886e38, 1.401298464324817e-45, -0];
        extremes.forEach((v, i) => (finite[i * 977] = v));
        expect(() => model.predict({ data: finite, rows, cols: nFeatures })).not.toThrow();
      }
    });

    it.each(badYCases)('gradient: y %s', (_label, y, kind, code, name) => {
      expectArgError(thrown(() => make().gradient(goodX, y as never)), kind, code, name);
    });
  });

  describe('inputs are never modified', () => {
    it('fit, fitSync, predict, predictProba and gradient leave X and y as they were', async () => {
      const u8 = Uint8Array.from(goodX.data, (v) => Math.floor(v * 256));
      const arrays = Array.from({ length: goodX.rows }, (_, r) => Array.from(goodX.data.subarray(r * nFeatures, (r + 1) * nFeatures)));
      const inputs = [
        goodX,
        { data: Float32Array.from(goodX.data), rows: goodX.rows, cols: nFeatures },
        { data: u8, rows: goodX.rows, cols: nFeatures },
        arrays,
      ];
      const labels = [goodY, Uint8Array.from(goodY), Array.from(goodY)];
      for (const X of inputs) {
        for (const y of labels) {
          const xCopy = structuredClone(X);
          const yCopy = structuredClone(y);
          for (const dtype of ['float64', 'float32'] as const) {
            const model = make({ dtype });
            model.fitSync(X, y);
            await model.fit(X, y);
            model.predict(X);
            model.predictProba(X);
            model.gradient(X, y);
            model.gradientCheck(X, y);
          }
          expect(X).toStrictEqual(xCopy);
          expect(y).toStrictEqual(yCopy);
          if (!Array.isArray(X)) expectSameBits(X.data, (xCopy as typeof X).data, 'X.data');
        }
      }
    });
  });

  describe('load options', () => {
    it('rejects bad load options', () => {
      const doc = make().toJSON();
      expectArgError(thrown(() => NeuralNetMLP.fromJSON(doc, { backend: 'gpu' } as never)), RangeError, RANGE, 'options.backend');
      expectArgError(thrown(() => NeuralNetMLP.fromJSON(doc, { threads: 0 })), RangeError, RANGE, 'options.threads');
      expectArgError(thrown(() => NeuralNetMLP.fromJSON(doc, { dtype: 'float32' } as never)), TypeError, TYPE, 'options.dtype');
      expectArgError(thrown(() => NeuralNetMLP.fromJSON(doc, 'js' as never)), TypeError, TYPE, 'options');
      expectArgError(thrown(() => NeuralNetMLP.loadSync('')), TypeError, TYPE, 'path');
      expectArgError(thrown(() => NeuralNetMLP.loadSync(42 as never)), TypeError, TYPE, 'path');
    });
  });
});

// ---------------------------------------------------------------------------------------------
// The raw addon, called directly with garbage: every call must throw TypeError/RangeError.
// ---------------------------------------------------------------------------------------------

const addonPath =
  process.env.NEURALNET_MLP_ADDON ?? fileURLToPath(new URL('../build/Release/neuralnet_mlp.node', import.meta.url));
const addonPresent = existsSync(addonPath);
if (!addonPresent && process.env.NEURALNET_MLP_REQUIRE_NATIVE === '1') throw new Error(`no addon at ${addonPath} (NEURALNET_MLP_REQUIRE_NATIVE=1)`);
if (!addonPresent) console.log(`validation.test.ts: no addon at ${addonPath}; the raw addon tests are skipped`);

type AnyFn = (...args: unknown[]) => unknown;
interface RawAddon {
  abiVersion?: number;
  trainEpoch?: AnyFn;
  Trainer?: new (...args: unknown[]) => { epoch: AnyFn; epochAsync?: AnyFn };
  outputLogits?: AnyFn;
  costAndGradient?: AnyFn;
  [key: string]: unknown;
}

/** Valid arguments for every addon entry point (a 3-4-2 float64 network, 5 rows). */
function validArgs() {
  const sizes = Int32Array.from([3, 4, 2]);
  const rows = 5;
  return {
    net: {
      sizes,
      weights: [new Float64Array(4 * 4).fill(0.1), new Float64Array(2 * 5).fill(-0.1)],
      prevDelta: [new Float64Array(16), new Float64Array(10)],
    } as Record<string, unknown>,
    x: { data: new Float64Array(rows * 3).fill(0.5), rows, cols: 3 } as Record<string, unknown>,
    labels: Int32Array.from([0, 1, 0, 1, 1]) as unknown,
    order: Int32Array.from([4, 3, 2, 1, 0]) as unknown,
    params: { eta: 0.1, alpha: 0, l1: 0, l2: 0, minibatches: 2, threads: 1 } as Record<string, unknown>,
    costs: new Float64Array(4) as unknown,
    costOffset: 0 as unknown,
    stop: new Int32Array(1) as unknown,
    out: new Float64Array(rows * 2) as unknown,
    grads: [new Float64Array(16), new Float64Array(10)] as unknown,
    l1: 0 as unknown,
    l2: 0 as unknown,
    threads: 1 as unknown,
  };
}
type Args = ReturnType<typeof validArgs>;

/** The training call in whichever form this addon has (ABI 1: trainEpoch; ABI 2: Trainer + epoch). */
function train(addon: RawAddon, a: Args): unknown {
  if (typeof addon.Trainer === 'function') {
    const trainer = new addon.Trainer(a.net, a.x, a.labels, a.threads);
    return trainer.epoch(a.net, a.order, a.params, a.costs, a.costOffset, a.stop);
  }
  return addon.trainEpoch!(a.net, a.x, a.labels, a.order, a.params, a.costs, a.costOffset, a.stop);
}
/** The asynchronous training call (ABI 2 with Trainer.prototype.epochAsync; see hasEpochAsync). */
function trainAsync(addon: RawAddon, a: Args): unknown {
  const trainer = new addon.Trainer!(a.net, a.x, a.labels, a.threads);
  return trainer.epochAsync!(a.net, a.order, a.params, a.costs, a.costOffset, a.stop);
}
const hasEpochAsync = (addon: RawAddon) =>
  typeof addon.Trainer === 'function' && typeof (addon.Trainer.prototype as { epochAsync?: unknown }).epochAsync === 'function';
const logits = (addon: RawAddon, a: Args) => addon.outputLogits!(a.net, a.x, a.out, a.threads);
const logitsAsync = (addon: RawAddon, a: Args) => (addon.outputLogitsAsync as AnyFn)(a.net, a.x, a.out, a.threads);
const gradient = (addon: RawAddon, a: Args) => addon.costAndGradient!(a.net, a.x, a.labels, a.order, a.l1, a.l2, a.grads);

/** Perturbations of valid arguments, each of which every entry point using that argument must reject. */
const garbage: [label: string, change: (a: Args) => void][] = [
  ['net undefined', (a) => void (a.net = undefined as never)],
  ['net a number', (a) => void (a.net = 5 as never)],
  ['net.sizes a plain array', (a) => void (a.net.sizes = [3, 4, 2])],
  ['net.sizes a Float64Array', (a) => void (a.net.sizes = Float64Array.from([3, 4, 2]))],
  ['net.sizes with a 0', (a) => void (a.net.sizes = Int32Array.from([3, 0, 2]))],
  ['net.sizes with a negative size', (a) => void (a.net.sizes = Int32Array.from([3, -4, 2]))],
  ['net.sizes with one entry', (a) => void (a.net.sizes = Int32Array.from([3]))],
  ['net.sizes with 100 entries', (a) => void (a.net.sizes = new Int32Array(100).fill(2))],
  ['net.sizes huge', (a) => void (a.net.sizes = Int32Array.from([3, 2 ** 31 - 1, 2]))],
  ['net.weights missing', (a) => void delete a.net.weights],
  ['net.weights empty', (a) => void (a.net.weights = [])],
  ['net.weights one matrix short', (a) => void (a.net.weights = [new Float64Array(16)])],
  ['net.weights[0] short', (a) => void ((a.net.weights as Float64Array[])[0] = new Float64Array(15))],
  ['net.weights[1] short', (a) => void ((a.net.weights as Float64Array[])[1] = new Float64Array(2))],
  ['net.weights[1] too long', (a) => void ((a.net.weights as Float64Array[])[1] = new Float64Array(11))],
  ['net.weights[1] a plain array', (a) => void ((a.net.weights as unknown[])[1] = new Array(10).fill(0))],
  ['net.weights mixed dtypes', (a) => void ((a.net.weights as unknown[])[1] = new Float32Array(10))],
  ['net.weights[0] an Int32Array', (a) => void ((a.net.weights as unknown[])[0] = new Int32Array(16))],
  ['x undefined', (a) => void (a.x = undefined as never)],
  ['x.data missing', (a) => void delete a.x.data],
  ['x.data an Int16Array', (a) => void (a.x.data = new Int16Array(15))],
  ['x.data length mismatch', (a) => void (a.x.data = new Float64Array(14))],
  ['x.data longer than rows * cols', (a) => void (a.x.data = new Float64Array(16))],
  ['x.rows more than the data', (a) => void (a.x.rows = 6)],
  ['x.rows NaN', (a) => void (a.x.rows = NaN)],
  ['x.rows a string', (a) => void (a.x.rows = '5')],
  ['x.rows 0', (a) => void (a.x.rows = 0)],
  ['x.rows -1', (a) => void (a.x.rows = -1)],
  ['x.rows 2^40', (a) => void (a.x.rows = 2 ** 40)],
  ['x.cols not the input size', (a) => void Object.assign(a.x, { cols: 5, rows: 3 })],
];
const labelGarbage: [string, (a: Args) => void][] = [
  ['labels a Uint8Array', (a) => void (a.labels = Uint8Array.from([0, 1, 0, 1, 1]))],
  ['labels a plain array', (a) => void (a.labels = [0, 1, 0, 1, 1])],
  ['labels short', (a) => void (a.labels = Int32Array.from([0, 1, 0, 1]))],
  ['label out of range', (a) => void (a.labels = Int32Array.from([0, 1, 2, 1, 1]))],
  ['label negative', (a) => void (a.labels = Int32Array.from([0, 1, 0, -1, 1]))],
  ['label huge', (a) => void (a.labels = Int32Array.from([0, 1, 0, 2 ** 31 - 1, 1]))],
  ['order a Float64Array', (a) => void (a.order = Float64Array.from([0, 1, 2, 3, 4]))],
  ['order empty', (a) => void (a.order = new Int32Array(0))],
  ['order entry = rows', (a) => void (a.order = Int32Array.from([0, 1, 5, 3, 4]))],
  ['order entry negative', (a) => void (a.order = Int32Array.from([0, 1, -1, 3, 4]))],
  ['order entry huge', (a) => void (a.order = Int32Array.from([0, 1, 2 ** 31 - 1, 3, 4]))],
];
const trainGarbage: [string, (a: Args) => void][] = [
  ['net.prevDelta missing', (a) => void delete a.net.prevDelta],
  ['net.prevDelta short', (a) => void ((a.net.prevDelta as Float64Array[])[1] = new Float64Array(9))],
  ['net.prevDelta of the other dtype', (a) => void (a.net.prevDelta = [new Float32Array(16), new Float32Array(10)])],
  ['params missing', (a) => void (a.params = undefined as never)],
  ['params.eta NaN', (a) => void (a.params.eta = NaN)],
  ['params.eta a string', (a) => void (a.params.eta = '0.1')],
  ['params.alpha Infinity', (a) => void (a.params.alpha = Infinity)],
  ['params.l1 missing', (a) => void delete a.params.l1],
  ['params.minibatches 0', (a) => void (a.params.minibatches = 0)],
  ['params.minibatches > order length', (a) => void (a.params.minibatches = 6)],
  ['params.minibatches 1.5', (a) => void (a.params.minibatches = 1.5)],
  ['costs too short', (a) => void (a.costs = new Float64Array(1))],
  ['costs a plain array', (a) => void (a.costs = [0, 0, 0, 0])],
  ['costs a Float32Array', (a) => void (a.costs = new Float32Array(4))],
  ['costOffset leaves too little room', (a) => void (a.costOffset = 3)],
  ['costOffset beyond the end', (a) => void (a.costOffset = 5)],
  ['costOffset negative', (a) => void (a.costOffset = -1)],
  ['costOffset 1.5', (a) => void (a.costOffset = 1.5)],
  ['costOffset a string', (a) => void (a.costOffset = '0')],
  ['stop a plain array', (a) => void (a.stop = [0])],
  ['stop empty', (a) => void (a.stop = new Int32Array(0))],
  ['stop a Uint8Array', (a) => void (a.stop = new Uint8Array(1))],
];
const outGarbage: [string, (a: Args) => void][] = [
  ['out short', (a) => void (a.out = new Float64Array(9))],
  ['out long', (a) => void (a.out = new Float64Array(11))],
  ['out of the other dtype', (a) => void (a.out = new Float32Array(10))],
  ['out missing', (a) => void (a.out = undefined)],
];
const gradGarbage: [string, (a: Args) => void][] = [
  ['grads missing', (a) => void (a.grads = undefined)],
  ['grads one matrix', (a) => void (a.grads = [new Float64Array(16)])],
  ['grads[1] short', (a) => void (a.grads = [new Float64Array(16), new Float64Array(9)])],
  ['grads of the other dtype', (a) => void (a.grads = [new Float32Array(16), new Float32Array(10)])],
  ['l1 NaN', (a) => void (a.l1 = NaN)],
  ['l2 a string', (a) => void (a.l2 = '0')],
];

/** Like expectTypeOrRangeError, for functions that may instead return a rejected promise. */
async function expectTypeOrRangeErrorAsync(fn: () => unknown, what: string): Promise<void> {
  let error: unknown;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  expect(error, `${what}: neither thrown nor rejected`).toBeDefined();
  expect(error instanceof TypeError || error instanceof RangeError, `${what}: threw ${String(error)}`).toBe(true);
}

function expectTypeOrRangeError(fn: () => unknown, what: string): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error, `${what}: no error thrown`).toBeDefined();
  expect(error instanceof TypeError || error instanceof RangeError, `${what}: threw ${String(error)}`).toBe(true);
}

describe.skipIf(!addonPresent)('the raw addon rejects garbage without crashing', () => {
  const load = (): RawAddon => createRequire(import.meta.url)(addonPath) as RawAddon;

  it('the valid calls work (so the garbage below is what fails)', () => {
    const addon = load();
    const a = validArgs();
    expect(train(addon, a)).toBe(2);
    expect(Array.from(a.costs as Float64Array).slice(0, 2).every((c) => c > 0)).toBe(true);
    logits(addon, a);
    expect((a.out as Float64Array).every((v) => Number.isFinite(v) && v !== 0)).toBe(true);
    expect(gradient(addon, a)).toBeGreaterThan(0);
  });

  it('every exported function throws on missing and absurd arguments', async () => {
    const addon = load();
    const fns = Object.entries(addon).filter(([, v]) => typeof v === 'function') as [string, AnyFn][];
    expect(fns.length).toBeGreaterThan(0);
    const absurd: unknown[][] = [[], [undefined], [null], [42], ['net'], [{}], [[]], [Symbol('x')], [{ sizes: 1, weights: 2 }], [{}, {}, {}, {}, {}, {}, {}, {}]];
    for (const [name, fn] of fns) {
      for (const args of absurd) {
        const call = () => (name === 'Trainer' ? new (fn as unknown as new (...a: unknown[]) => unknown)(...args) : fn(...args));
        if (name.endsWith('Async')) await expectTypeOrRangeErrorAsync(call, `${name}(${args.length} args)`);
        else expectTypeOrRangeError(call, `${name}(${args.length} args)`);
      }
    }
  });

  it('copyInput copies a Uint8Array, Float32Array or Float64Array (views and shared memory too) and rejects anything else', () => {
    const addon = load();
    const copyInput = addon.copyInput as AnyFn;
    for (const bad of [undefined, null, 42, 'data', [1, 2], new Int32Array(4), new Uint16Array(4), new DataView(new ArrayBuffer(8)), new ArrayBuffer(8)]) {
      expectTypeOrRangeError(() => copyInput(bad), `copyInput(${String(bad)})`);
    }
    const big = new Uint8Array(5 << 19);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 256;
    const shared = new Float32Array(new SharedArrayBuffer(64)).map((_, i) => i / 3);
    const sources = [big, big.subarray(5, 1000), shared, new Float64Array([1.5, -2, Math.PI]), new Uint8Array(0)];
    for (const source of sources) {
      const bytes = copyInput(source) as ArrayBuffer;
      expect(bytes).toBeInstanceOf(ArrayBuffer);
      expect(Buffer.compare(new Uint8Array(bytes), new Uint8Array(source.buffer, source.byteOffset, source.byteLength))).toBe(0);
    }
  });

  it('shuffleOrder checks the state and the order, and shuffles only when they are right', () => {
    const addon = load();
    if (typeof addon.shuffleOrder !== 'function') return;
    const shuffle = addon.shuffleOrder as AnyFn;
    const state = () => {
      const s = new Uint32Array(625);
      s.fill(12345);
      s[624] = 624;
      return s;
    };
    const order = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    const cases: [string, unknown[]][] = [
      ['state too short', [new Uint32Array(624), order]],
      ['state too long', [new Uint32Array(626), order]],
      ['state an Int32Array', [new Int32Array(625), order]],
      ['state a plain array', [Array.from(state()), order]],
      ['position past the words', [Object.assign(state(), { 624: 625 }), order]],
      ['position 2^32 - 1', [Object.assign(state(), { 624: 2 ** 32 - 1 }), order]],
      ['order a Uint32Array', [state(), new Uint32Array(8)]],
      ['order a Float64Array', [state(), new Float64Array(8)]],
      ['order missing', [state()]],
    ];
    for (const [label, args] of cases) {
      const copy = order.slice();
      expectTypeOrRangeError(() => shuffle(...args), label);
      expect(copy).toEqual(order);
    }
    const s = state();
    const shuffled = order.slice();
    shuffle(s, shuffled);
    expect(Array.from(shuffled).sort((x, y) => x - y)).toEqual(Array.from(order));
    expect(s[624]).toBeGreaterThanOrEqual(7);
    // Sharing one buffer is the caller's mistake, but stays within both arrays.
    const shared = new Uint32Array(625 + 8);
    shared[624] = 624;
    shuffle(shared.subarray(0, 625), new Int32Array(shared.buffer, 4 * 617, 8));
  });

  describe('training', () => {
    it.each([...garbage, ...labelGarbage, ...trainGarbage])('%s', (label, change) => {
      const addon = load();
      const a = validArgs();
      change(a);
      expectTypeOrRangeError(() => train(addon, a), label);
    });

    it('a float32 network with float64 momentum or a float64 costs check', () => {
      const addon = load();
      const a = validArgs();
      a.net.weights = [new Float32Array(16), new Float32Array(10)];
      expectTypeOrRangeError(() => train(addon, a), 'float32 weights with float64 prevDelta');
    });
  });

  describe('training, asynchronous (epochAsync)', () => {
    it.each([...garbage, ...labelGarbage, ...trainGarbage])('%s', async (label, change) => {
      const addon = load();
      if (!hasEpochAsync(addon)) return;
      const a = validArgs();
      change(a);
      await expectTypeOrRangeErrorAsync(() => trainAsync(addon, a), label);
    });

    it('a valid asynchronous epoch resolves to the minibatches done', async () => {
      const addon = load();
      if (!hasEpochAsync(addon)) return;
      const a = validArgs();
      await expect(trainAsync(addon, a)).resolves.toBe(2);
    });
  });

  describe('outputLogitsAsync', () => {
    it.each([...garbage, ...outGarbage])('%s', async (label, change) => {
      const addon = load();
      if (typeof addon.outputLogitsAsync !== 'function') return;
      const a = validArgs();
      change(a);
      await expectTypeOrRangeErrorAsync(() => logitsAsync(addon, a), label);
    });
  });

  describe('outputLogits', () => {
    it.each([...garbage, ...outGarbage])('%s', (label, change) => {
      const addon = load();
      const a = validArgs();
      change(a);
      expectTypeOrRangeError(() => logits(addon, a), label);
    });
  });

  describe('Predictor: logits and labels', () => {
    type RawPredictor = { logits: AnyFn; labels: AnyFn };
    const predictor = (addon: RawAddon, a: Args) => new (addon.Predictor as new (...args: unknown[]) => RawPredictor)(a.net, a.threads);
    const labelsOutGarbage: [string, (a: Args) => void][] = [
      ['labels out short', (a) => void (a.out = new Int32Array(4))],
      ['labels out long', (a) => void (a.out = new Int32Array(6))],
      ['labels out a Float64Array', (a) => void (a.out = new Float64Array(5))],
      ['labels out a plain array', (a) => void (a.out = [0, 0, 0, 0, 0])],
      ['labels out missing', (a) => void (a.out = undefined)],
    ];

    it('valid calls work: labels are the argmax of the logits', () => {
      const addon = load();
      const a = validArgs();
      // Output 0 is 1.2 for every row; output 1 is -0.2 + 2 * sigmoid(0.1 + 0.1 * sum(x)): above
      // 1.2 only for row 3 (sum 15).
      (a.x.data as Float64Array).set([0, 1, 0, 2, 0, 0, 0, 0, 3, 5, 5, 5], 0);
      (a.net.weights as Float64Array[])[1].set([1.2, 0, 0, 0, 0, -0.2, 0.5, 0.5, 0.5, 0.5]);
      const p = predictor(addon, a);
      p.logits(a.x, a.out);
      const logitsOut = a.out as Float64Array;
      expect(logitsOut.every((v) => Number.isFinite(v) && v !== 0)).toBe(true);
      const labels = new Int32Array(5).fill(-1);
      p.labels(a.x, labels);
      expect(Array.from(labels)).toEqual(Array.from({ length: 5 }, (_, r) => (logitsOut[2 * r + 1] > logitsOut[2 * r] ? 1 : 0)));
      expect(Array.from(labels)).toEqual([0, 0, 0, 1, 0]);
    });

    it.each([...garbage, ...outGarbage])('logits: %s', (label, change) => {
      const addon = load();
      const a = validArgs();
      change(a);
      expectTypeOrRangeError(() => predictor(addon, a).logits(a.x, a.out), label);
    });

    it.each([...garbage, ...labelsOutGarbage])('labels: %s', (label, change) => {
      const addon = load();
      const a = validArgs();
      a.out = new Int32Array(5);
      change(a);
      expectTypeOrRangeError(() => predictor(addon, a).labels(a.x, a.out), label);
    });
  });

  describe('costAndGradient', () => {
    it.each([...garbage, ...labelGarbage, ...gradGarbage])('%s', (label, change) => {
      const addon = load();
      const a = validArgs();
      change(a);
      expectTypeOrRangeError(() => gradient(addon, a), label);
    });
  });

  it('firstNonFinite: with maxMagnitude, the first element beyond it (in the data\'s own type), NaN or infinity', () => {
    const addon = load();
    const scan = addon.firstNonFinite as (data: Float64Array | Float32Array, maxMagnitude?: number) => number;
    const n = 300;
    for (const Float of [Float64Array, Float32Array]) {
      for (const at of [0, 5, 63, 64, 200, n - 1]) {
        const data = new Float(n).fill(1);
        data[at] = -2.5;
        expect(scan(data, 2.5), `${Float.name} at ${at}`).toBe(-1);
        expect(scan(data, 2), `${Float.name} at ${at}`).toBe(at);
        expect(scan(data), `${Float.name} at ${at}`).toBe(-1);
        data[at] = Infinity;
        // A bound above float32's range still catches infinity in float32 data.
        expect(scan(data, 1e300), `${Float.name} at ${at}`).toBe(at);
        data[at] = NaN;
        expect(scan(data, 1e300), `${Float.name} at ${at}`).toBe(at);
      }
    }
    // 1.1 as a float32 is a little above 1.1: it is beyond a bound of 1.1.
    const f32 = Float32Array.from([1, Math.fround(1.1), 0]);
    expect(scan(f32, 1.1)).toBe(1);
    expect(scan(Float32Array.from([Math.fround(1.1) - 2 ** -23]), 1.1)).toBe(-1);
    const data = new Float64Array(4);
    expect(() => scan(data, -1)).toThrow(RangeError);
    expect(() => scan(data, NaN)).toThrow(RangeError);
    expect(() => scan(data, Infinity)).toThrow(RangeError);
    expect(() => scan(data, '1' as never)).toThrow(TypeError);
  });

  it('a trainer whose data was detached between epochs throws instead of reading freed memory', () => {
    const addon = load();
    for (const what of ['x.data', 'labels'] as const) {
      const a = validArgs();
      const trainer = new addon.Trainer!(a.net, a.x, a.labels, a.threads);
      expect(trainer.epoch(a.net, a.order, a.params, a.costs, a.costOffset, a.stop)).toBe(2);
      const target = what === 'x.data' ? (a.x.data as Float64Array) : (a.labels as Int32Array);
      structuredClone(target.buffer, { transfer: [target.buffer as ArrayBuffer] }); // detaches
      expect(target.length).toBe(0);
      expect(() => trainer.epoch(a.net, a.order, a.params, a.costs, a.costOffset, a.stop), what).toThrow();
    }
  });

  it('changing order while epochAsync runs cannot make the worker thread read out of bounds (run in a child process)', () => {
    const addon = load();
    // order is validated when epochAsync is called; the worker thread reads it minibatch by
    // minibatch afterwards. Writing an out-of-range index into it meanwhile must not crash.
    const script = `
      const a = require(process.argv[1]);
      const rows = 20000, cols = 100, hidden = 64, out = 10;
      const mk = (n) => new Float64Array(n).fill(0.01);
      const net = { sizes: Int32Array.from([cols, hidden, out]), weights: [mk(hidden * (cols + 1)), mk(out * (hidden + 1))],
                    prevDelta: [mk(hidden * (cols + 1)), mk(out * (hidden + 1))] };
      const x = { data: new Float64Array(rows * cols).fill(0.5), rows, cols };
      const order = Int32Array.from({ length: rows }, (_, i) => i);
      const trainer = new a.Trainer(net, x, new Int32Array(rows), 1);
      const p = trainer.epochAsync(net, order, { eta: 0.1, alpha: 0, l1: 0, l2: 0, minibatches: 200 }, new Float64Array(200), 0, new Int32Array(1));
      order.fill(2 ** 30, 100);
      p.then((d) => console.log('resolved ' + d), (e) => console.log('rejected ' + e.message));
    `;
    const child = spawnSync(process.execPath, ['-e', script, addonPath], { encoding: 'utf8', timeout: 60_000 });
    expect(child.signal, `the child process died: ${child.stderr}`).toBeNull();
    expect(child.status, child.stderr).toBe(0);
    expect(child.stdout).toMatch(/resolved|rejected/);
  });

  it('still works after all that', () => {
    const addon = load();
    const a = validArgs();
    expect(train(addon, a)).toBe(2);
    expect(gradient(addon, a)).toBeGreaterThan(0);
  });
});

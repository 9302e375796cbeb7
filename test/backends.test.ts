/**
 * Native (C++) vs js (TypeScript) agreement on the same seed and data. Runnable alone: CI runs
 * `npx vitest run test/backends.test.ts` against a second build of the addon.
 *
 * Measured (200 x 20, minibatches 7, 3 epochs): float64 weights ||n - j|| / ||j|| <= 2e-16 and
 * costs <= 5e-16 relative; float32 native vs float64 js ~1.5e-7 (weights) and <= 2.1e-7 (costs);
 * gradients <= 5e-14.
 */
import { describe, expect, it } from 'vitest';
import { NeuralNetMLP, type InputArray, type MLPOptions, type Matrix } from '../lib/index.js';
import { hasNative, nativeUnavailableReason } from './helpers/backends.js';
import { expectClose, expectSameBits, normRelErr, randomDataset } from './helpers/numeric.js';

if (!hasNative) {
  console.log(`backends.test.ts: native vs js agreement tests are SKIPPED, the addon is unavailable:\n${nativeUnavailableReason()}`);
}

const F64_REL = 1e-9;
const F32_REL = 1e-5;
const GRAD_REL = 1e-12;

const rows = 200;
const cols = 20;
const nOutput = 4;
const { X: base, y } = randomDataset(42, rows, cols, nOutput);

/** The same features three ways; raw bytes 0..255 need a smaller step (as MNIST pixels do). */
const inputs: [string, Matrix<InputArray>, number][] = [
  ['Float64Array', base, 0.01],
  ['Float32Array', { data: Float32Array.from(base.data), rows, cols }, 0.01],
  ['Uint8Array', { data: Uint8Array.from(base.data, (v) => Math.floor(v * 256)), rows, cols }, 1e-4],
];
const hiddens: (number | number[])[] = [8, [7, 5]];

function options(nHidden: number | number[], eta: number, epochs: number, extra: Partial<MLPOptions> = {}): MLPOptions {
  return {
    nOutput,
    nFeatures: cols,
    nHidden,
    l1: 0.01,
    l2: 0.1,
    alpha: 0.1,
    minibatches: 7,
    shuffle: true,
    decreaseConst: 0.01,
    eta,
    epochs,
    randomState: 5,
    ...extra,
  };
}

function expectWeightsNear(actual: NeuralNetMLP, expected: NeuralNetMLP, rel: number, what: string): void {
  const a = actual.weights;
  const e = expected.weights;
  expect(a.length).toBe(e.length);
  for (let l = 0; l < e.length; l++) {
    expect([a[l].rows, a[l].cols]).toEqual([e[l].rows, e[l].cols]);
    const err = normRelErr(a[l].data, e[l].data);
    expect(err, `${what}: weights[${l}] ||a - b|| / ||b|| = ${err}`).toBeLessThanOrEqual(rel);
  }
}

describe.skipIf(!hasNative)('native vs js', () => {
  describe.each(hiddens.map((h) => [JSON.stringify(h), h] as const))('nHidden %s', (_label, nHidden) => {
    describe.each(inputs)('X as %s', (_kind, X, eta) => {
      it('float64: same initial weights; weights and costs agree after 1 and after 3 epochs', () => {
        const init = [new NeuralNetMLP(options(nHidden, eta, 1, { backend: 'js' })), new NeuralNetMLP(options(nHidden, eta, 1, { backend: 'native' }))];
        init[1].weights.forEach((w, l) => expectSameBits(w.data, init[0].weights[l].data, `initial weights[${l}]`));
        for (const epochs of [1, 3]) {
          const js = new NeuralNetMLP(options(nHidden, eta, epochs, { backend: 'js' })).fitSync(X, y);
          const native = new NeuralNetMLP(options(nHidden, eta, epochs, { backend: 'native' })).fitSync(X, y);
          expect(native.backend).toBe('native');
          expect(native.costs.length).toBe(epochs * 7);
          expectClose(native.costs, js.costs, { rel: F64_REL }, `costs after ${epochs} epoch(s)`);
          expectWeightsNear(native, js, F64_REL, `after ${epochs} epoch(s)`);
          for (const w of native.weights) expect(w.data).toBeInstanceOf(Float64Array);
        }
      });

      it('float32 native agrees with float64 js (and float32 js) to single precision', () => {
        for (const epochs of [1, 3]) {
          const js64 = new NeuralNetMLP(options(nHidden, eta, epochs, { backend: 'js' })).fitSync(X, y);
          const js32 = new NeuralNetMLP(options(nHidden, eta, epochs, { backend: 'js', dtype: 'float32' })).fitSync(X, y);
          const native32 = new NeuralNetMLP(options(nHidden, eta, epochs, { backend: 'native', dtype: 'float32' })).fitSync(X, y);
          for (const w of native32.weights) expect(w.data).toBeInstanceOf(Float32Array);
          expectWeightsNear(native32, js64, F32_REL, `float32 native vs float64 js, ${epochs} epoch(s)`);
          expectWeightsNear(native32, js32, F32_REL, `float32 native vs float32 js, ${epochs} epoch(s)`);
          expectClose(native32.costs, js64.costs, { rel: F32_REL }, `float32 native costs, ${epochs} epoch(s)`);
          const p = native32.predictProba(X);
          expect(p.data).toBeInstanceOf(Float32Array);
          expectClose(p.data, js64.predictProba(X).data, { rel: 0, abs: 1e-4 }, 'float32 predictProba');
        }
      });

      it('gradient(X, y) agrees to 1e-12 (fresh and trained weights)', () => {
        const js = new NeuralNetMLP(options(nHidden, eta, 2, { backend: 'js' }));
        const native = new NeuralNetMLP(options(nHidden, eta, 2, { backend: 'native' }));
        for (const stage of ['initial', 'trained']) {
          if (stage === 'trained') {
            js.fitSync(X, y);
            native.fitSync(X, y);
          }
          const gj = js.gradient(X, y);
          const gn = native.gradient(X, y);
          expect(Math.abs(gn.cost - gj.cost) / Math.abs(gj.cost), `${stage} cost ${gn.cost} vs ${gj.cost}`).toBeLessThanOrEqual(GRAD_REL);
          expect(gn.grads.length).toBe(gj.grads.length);
          gj.grads.forEach((g, l) => {
            expect([gn.grads[l].rows, gn.grads[l].cols]).toEqual([g.rows, g.cols]);
            const err = normRelErr(gn.grads[l].data, g.data);
            expect(err, `${stage} grads[${l}] relative error`).toBeLessThanOrEqual(GRAD_REL);
          });
        }
      });

      it('predict and predictProba agree', () => {
        const js = new NeuralNetMLP(options(nHidden, eta, 3, { backend: 'js' })).fitSync(X, y);
        const native = new NeuralNetMLP(options(nHidden, eta, 3, { backend: 'native' })).fitSync(X, y);
        const pj = js.predictProba(X);
        const pn = native.predictProba(X);
        expect([pn.rows, pn.cols]).toEqual([rows, nOutput]);
        expectClose(pn.data, pj.data, { rel: F64_REL, abs: 1e-15 }, 'predictProba');
        expect(Array.from(native.predict(X))).toEqual(Array.from(js.predict(X)));
      });
    });
  });

  describe('mostly-zero inputs (like MNIST pixels, which the native kernels may treat as sparse)', () => {
    /** Keeps about `density` of the features (and a few whole rows and columns zero). */
    function sparse(density: number): { X: Matrix<Float64Array>; y: Int32Array } {
      const { X: d, y: labels } = randomDataset(77, 300, cols, nOutput);
      const mask = randomDataset(78, 300, cols, nOutput).X.data;
      const data = Float64Array.from(d.data, (v, i) => (mask[i] < density ? v : 0));
      for (let c = 0; c < cols; c++) data[4 * cols + c] = 0; // an all-zero row
      for (let r = 0; r < 300; r++) data[r * cols + 7] = 0; // an all-zero column
      return { X: { data, rows: 300, cols }, y: labels };
    }
    const cases = [0.05, 0.2, 0.5, 0.51].flatMap((density) =>
      (['Float64Array', 'Float32Array', 'Uint8Array'] as const).map((kind) => [density, kind] as const),
    );
    it.each(cases)('density %d, X as %s: float64 weights, costs, gradient and predictions agree', (density, kind) => {
      const { X: dense, y: labels } = sparse(density);
      const X: Matrix<InputArray> =
        kind === 'Float64Array'
          ? dense
          : kind === 'Float32Array'
            ? { ...dense, data: Float32Array.from(dense.data) }
            : { ...dense, data: Uint8Array.from(dense.data, (v) => Math.ceil(v * 255)) };
      const eta = kind === 'Uint8Array' ? 1e-4 : 0.01;
      for (const nHidden of hiddens) {
        const js = new NeuralNetMLP(options(nHidden, eta, 3, { backend: 'js' })).fitSync(X, labels);
        const native = new NeuralNetMLP(options(nHidden, eta, 3, { backend: 'native' })).fitSync(X, labels);
        expectClose(native.costs, js.costs, { rel: F64_REL }, 'costs');
        expectWeightsNear(native, js, F64_REL, `nHidden ${JSON.stringify(nHidden)}`);
        const gj = js.gradient(X, labels);
        const gn = native.gradient(X, labels);
        expect(Math.abs(gn.cost - gj.cost) / gj.cost).toBeLessThanOrEqual(GRAD_REL);
        gj.grads.forEach((g, l) => expect(normRelErr(gn.grads[l].data, g.data), `grads[${l}]`).toBeLessThanOrEqual(GRAD_REL));
        expectClose(native.predictProba(X).data, js.predictProba(X).data, { rel: F64_REL, abs: 1e-15 }, 'predictProba');
        const n32 = new NeuralNetMLP(options(nHidden, eta, 3, { backend: 'native', dtype: 'float32' })).fitSync(X, labels);
        expectWeightsNear(n32, js, F32_REL, 'float32 native vs float64 js');
      }
    });
  });

  it('predicts across tasks and 128-row steps with the same bits for any thread count (dense, sparse and byte input)', () => {
    // 9001 rows x 20 features x 64 hidden units: enough work for several tasks, each taking its
    // rows 128 at a time with an uneven tail. Dense floats go through the blocked GEMM, sparse
    // floats through the compressed rows, bytes through the direct byte gather.
    const big = randomDataset(11, 9001, cols, nOutput);
    const sparse = Float64Array.from(big.X.data, (v) => (v < 0.8 ? 0 : v));
    const inputs: [string, Matrix<InputArray>][] = [
      ['dense Float64Array', big.X],
      ['sparse Float64Array', { data: sparse, rows: big.X.rows, cols }],
      ['sparse Float32Array', { data: Float32Array.from(sparse), rows: big.X.rows, cols }],
      ['sparse Uint8Array', { data: Uint8Array.from(sparse, (v) => Math.floor(v * 256)), rows: big.X.rows, cols }],
    ];
    for (const dtype of ['float64', 'float32'] as const) {
      // The initial (random) weights: their predictions vary more than a model fitted to noise.
      const initial = new NeuralNetMLP(options(64, 0.05, 1, { backend: 'native', dtype })).toJSON();
      const one = NeuralNetMLP.fromJSON(initial, { backend: 'native', threads: 1 });
      const js = NeuralNetMLP.fromJSON(initial, { backend: 'js' });
      const others = [2, 3].map((threads) => NeuralNetMLP.fromJSON(initial, { backend: 'native', threads }));
      for (const [kind, X] of inputs) {
        const proba = one.predictProba(X).data;
        const labels = Array.from(one.predict(X));
        expect(new Set(labels).size, kind).toBeGreaterThan(1);
        for (const [i, model] of others.entries()) {
          expectSameBits(model.predictProba(X).data, proba, `${dtype}, ${kind}, ${i + 2} threads`);
          expect(Array.from(model.predict(X))).toEqual(labels);
        }
        expectClose(proba, js.predictProba(X).data, { rel: dtype === 'float64' ? F64_REL : F32_REL, abs: 1e-7 }, `${dtype}, ${kind}: native vs js`);
      }
    }
  });

  it('predict gives the lower label on ties and agrees with predictProba, natively as in js', () => {
    for (const backend of ['native', 'js'] as const) {
      for (const dtype of ['float64', 'float32'] as const) {
        const doc = new NeuralNetMLP(options(8, 0.01, 1, { backend, dtype })).toJSON();
        // Output weights all zero but the biases of classes 1 and 3 (column 0 of rows 1 and 3):
        // every row ties between them.
        const out = doc.weights[doc.weights.length - 1];
        out.data = out.data.map((_, i) => (i % out.cols === 0 && (i / out.cols === 1 || i / out.cols === 3) ? 2 : 0));
        const tied = NeuralNetMLP.fromJSON(doc, { backend });
        expect(Array.from(tied.predict(base)), `${backend} ${dtype}`).toEqual(new Array<number>(rows).fill(1));
        // Trained weights: the label is the column of the row's largest probability.
        const model = new NeuralNetMLP(options(8, 0.01, 3, { backend, dtype })).fitSync(base, y);
        const p = model.predictProba(base);
        const labels = model.predict(base);
        for (let r = 0; r < rows; r++) {
          const row = Array.from(p.data.subarray(r * nOutput, (r + 1) * nOutput));
          expect(row[labels[r]]).toBe(Math.max(...row));
        }
      }
    }
  });

  it('predicts many rows (several 128-row steps, uneven tail) like js', () => {
    const big = randomDataset(7, 1300, cols, nOutput);
    const js = new NeuralNetMLP(options([7, 5], 0.05, 2, { backend: 'js' })).fitSync(big.X, big.y);
    const native = new NeuralNetMLP(options([7, 5], 0.05, 2, { backend: 'native' })).fitSync(big.X, big.y);
    expectWeightsNear(native, js, F64_REL, '1300 rows');
    expectClose(native.predictProba(big.X).data, js.predictProba(big.X).data, { rel: F64_REL, abs: 1e-15 }, 'predictProba, 1300 rows');
    expect(Array.from(native.predict(big.X))).toEqual(Array.from(js.predict(big.X)));
  });

  it('wide hidden layers (blocked GEMM) and narrow ones (small products) both agree with js', () => {
    // Layer 2 of [64, 80] holds 64 x 80 weights: past the small-product limit in float64, within it in float32.
    for (const nHidden of [[64, 80], [6, 3]]) {
      const js = new NeuralNetMLP(options(nHidden, 0.01, 2, { backend: 'js' })).fitSync(base, y);
      const native = new NeuralNetMLP(options(nHidden, 0.01, 2, { backend: 'native' })).fitSync(base, y);
      expectClose(native.costs, js.costs, { rel: F64_REL }, `costs, ${JSON.stringify(nHidden)}`);
      expectWeightsNear(native, js, F64_REL, `nHidden ${JSON.stringify(nHidden)}`);
      expectClose(native.predictProba(base).data, js.predictProba(base).data, { rel: F64_REL, abs: 1e-15 }, 'predictProba');
      const n32 = new NeuralNetMLP(options(nHidden, 0.01, 2, { backend: 'native', dtype: 'float32' })).fitSync(base, y);
      expectWeightsNear(n32, js, F32_REL, `float32, nHidden ${JSON.stringify(nHidden)}`);
    }
  });

  // Whole 64-feature blocks and a last partial one, whose non-zero bytes are found 32, 16 and 1
  // at a time: 150 = 2 * 64 + 16 + 6, MNIST's 784 = 12 * 64 + 16, 120 = 64 + 32 + 16 + 8,
  // 100 = 64 + 32 + 4, 95 = 64 + 16 + 15, 70 = 64 + 6, 64 (no partial block).
  it.each([150, 784, 120, 100, 95, 70, 64])(
    'predicts sparse byte rows (read without compressing them) bit-identically to the same values as floats: %i features',
    (wide) => {
      // ~15% non-zero bytes, like MNIST.
      const n = 1100;
      const { X: mask } = randomDataset(90, n, wide, nOutput);
      const bytes = Uint8Array.from(mask.data, (v, i) => (v < 0.15 ? 1 + ((i * 37) % 255) : 0));
      bytes.fill(0, 3 * wide, 4 * wide); // an all-zero row
      bytes.fill(255, 5 * wide, 5 * wide + 64); // a whole block of non-zeros
      bytes.fill(7, 7 * wide - 20, 7 * wide); // a row's last 20 features all non-zero
      const labels = Int32Array.from({ length: n }, (_, i) => i % nOutput);
      const asBytes = { data: bytes, rows: n, cols: wide };
      const asFloats = { data: Float64Array.from(bytes), rows: n, cols: wide };
      for (const dtype of ['float64', 'float32'] as const) {
        for (const threads of [1, 2]) {
          const model = new NeuralNetMLP({ ...options(9, 1e-4, 2, { backend: 'native', dtype }), nFeatures: wide, threads });
          model.fitSync(asBytes, labels);
          const p = model.predictProba(asBytes);
          expectSameBits(p.data, model.predictProba(asFloats).data, `${dtype}, ${threads} thread(s)`);
          expect(p.data.some((v) => v !== p.data[0])).toBe(true);
        }
      }
    },
  );

  it('reads typed arrays that are views at an offset into a larger buffer', () => {
    const offsetBuffer = new ArrayBuffer(8 * (rows * cols + 3));
    const view = new Float64Array(offsetBuffer, 8 * 3, rows * cols);
    view.set(base.data);
    const bytes = Uint8Array.from(base.data, (v) => Math.floor(v * 256));
    const byteView = new Uint8Array(new ArrayBuffer(bytes.length + 5), 5, bytes.length);
    byteView.set(bytes);
    for (const [X, copy, eta] of [
      [{ data: view, rows, cols }, base, 0.01],
      [{ data: byteView, rows, cols }, { data: bytes, rows, cols }, 1e-4],
    ] as const) {
      const a = new NeuralNetMLP(options(8, eta, 2, { backend: 'native' })).fitSync(X, y);
      const b = new NeuralNetMLP(options(8, eta, 2, { backend: 'native' })).fitSync(copy, y);
      expectSameBits(a.costs, b.costs, 'costs from a view');
      a.weights.forEach((w, l) => expectSameBits(w.data, b.weights[l].data, `weights[${l}] from a view`));
      expectSameBits(a.predictProba(X).data, b.predictProba(copy).data, 'predictProba from a view');
    }
  });

  it('number[][] and Float64Array give bit-identical results', () => {
    const arrays: number[][] = [];
    for (let r = 0; r < rows; r++) arrays.push(Array.from(base.data.subarray(r * cols, (r + 1) * cols)));
    const a = new NeuralNetMLP(options([7, 5], 0.01, 2, { backend: 'native' })).fitSync(arrays, Array.from(y));
    const b = new NeuralNetMLP(options([7, 5], 0.01, 2, { backend: 'native' })).fitSync(base, y);
    expectSameBits(a.costs, b.costs, 'costs');
    a.weights.forEach((w, l) => expectSameBits(w.data, b.weights[l].data, `weights[${l}]`));
  });
});

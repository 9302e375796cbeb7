/**
 * Subnormal numbers in the native backend (native/kernels/fpenv.h). On x86 the kernels run with
 * subnormals flushed to zero (MXCSR's FTZ and DAZ): on many x86 CPUs each operation on one costs a
 * microcode assist, and training on raw pixels, whose hidden units saturate far below zero, makes
 * them by the million (an Intel Xeon trained 29 times slower without the flush).
 *
 * Checked here: (1) the flush stays inside the native calls: JavaScript on the calling thread
 * still computes with subnormals afterwards (the setting is per thread, and V8 does its
 * arithmetic with the same SSE unit), after every kind of native call; (2) on data that saturates
 * the hidden units that far, the native weights, costs and predictions still agree with the
 * TypeScript backend's, which keeps subnormals, as closely as on ordinary data.
 */
import { describe, expect, it } from 'vitest';
import { NeuralNetMLP, RandomState, type MLPOptions } from '../lib/index.js';
import { hasNative, nativeUnavailableReason } from './helpers/backends.js';
import { expectClose, normRelErr } from './helpers/numeric.js';

if (!hasNative) {
  console.log(`subnormals.test.ts: the native tests are SKIPPED, the addon is unavailable:\n${nativeUnavailableReason()}`);
}

/**
 * Numbers from their bit patterns: reading memory is not arithmetic, whereas a literal such as
 * 5e-324 is itself parsed to 0 on a thread whose subnormals are flushed. Read at run time from
 * arrays, so no compiler folds the arithmetic below into a constant.
 */
const f64 = new Float64Array(new BigUint64Array([0x0010000000000000n, 0x0004000000000000n, 1n, 2n]).buffer);
const [smallestNormal, quarterOfIt, smallestSubnormal, twiceIt] = f64;
const f32 = new Float32Array(new Uint32Array([0x00800000, 0x00200000]).buffer);
const [smallestNormalFloat, quarterOfItFloat] = f32;
const factors = new Float64Array([4, 2]);

/** Throws unless this thread's arithmetic keeps subnormal results (FTZ off) and inputs (DAZ off). */
function expectSubnormalsKept(after: string): void {
  const [four, two] = factors;
  expect(smallestNormal / four, `FTZ (double) after ${after}`).toBe(quarterOfIt);
  expect(smallestSubnormal * two, `DAZ (double) after ${after}`).toBe(twiceIt);
  const rounded = new Float32Array(2);
  rounded[0] = smallestNormalFloat / four; // exact in double, subnormal when rounded to float
  rounded[1] = quarterOfItFloat * four;
  expect(rounded[0], `FTZ (float) after ${after}`).toBe(quarterOfItFloat);
  expect(rounded[1], `DAZ (float) after ${after}`).toBe(smallestNormalFloat);
  expect(quarterOfIt > 0 && smallestSubnormal > 0, 'the bit patterns are subnormal numbers').toBe(true);
}

const rows = 240;
const cols = 400;
const nOutput = 10;

/** Bytes 0-255 over 400 features: pre-activations in the thousands, far past the sigmoid's range. */
function saturatingData(): { X: { data: Uint8Array; rows: number; cols: number }; y: Int32Array } {
  const rng = new RandomState(7);
  const u = new Float64Array(rows * cols);
  rng.uniform(0, 1, u);
  const data = Uint8Array.from(u, (v) => (v < 0.6 ? 0 : Math.floor(v * 256)));
  const y = new Int32Array(rows);
  for (let i = 0; i < rows; i++) y[i] = rng.interval(nOutput - 1);
  return { X: { data, rows, cols }, y };
}

function options(backend: 'native' | 'js', extra: Partial<MLPOptions> = {}): MLPOptions {
  return {
    nOutput,
    nFeatures: cols,
    nHidden: 30,
    l1: 0,
    l2: 0.1,
    alpha: 0.001,
    minibatches: 6,
    eta: 1e-4,
    epochs: 4,
    randomState: 3,
    backend,
    threads: 2,
    ...extra,
  };
}

describe.skipIf(!hasNative)('native backend and subnormal numbers', () => {
  it('JavaScript keeps subnormal arithmetic after every kind of native call', async () => {
    expectSubnormalsKept('nothing');
    const { X, y } = saturatingData();
    for (const dtype of ['float64', 'float32'] as const) {
      const model = new NeuralNetMLP(options('native', { dtype }));
      model.fitSync(X, y);
      expectSubnormalsKept(`fitSync (${dtype})`);
      await model.fit(X, y);
      expectSubnormalsKept(`fit (${dtype})`);
      await model.partialFit(X, y);
      expectSubnormalsKept(`partialFit (${dtype})`);
      model.predict(X);
      expectSubnormalsKept(`predict (${dtype})`);
      model.predictProba({ data: X.data.subarray(0, cols), rows: 1, cols });
      expectSubnormalsKept(`single-sample predictProba (${dtype})`);
      await model.predictAsync(X);
      expectSubnormalsKept(`predictAsync (${dtype})`);
      model.gradient(X, y);
      expectSubnormalsKept(`gradient (${dtype})`);
      model.gradientCheck({ data: X.data.subarray(0, 4 * cols), rows: 4, cols }, y.subarray(0, 4));
      expectSubnormalsKept(`gradientCheck (${dtype})`);
    }
  });

  it('on data that saturates the hidden units, native float64 agrees with the TypeScript backend', () => {
    const { X, y } = saturatingData();
    const native = new NeuralNetMLP(options('native')).fitSync(X, y);
    const js = new NeuralNetMLP(options('js')).fitSync(X, y);
    // The data does what it is here for: most hidden units of most samples sit where the
    // derivative a(1 - a) times anything below 1 is subnormal (a below 1e-290, z below -667).
    const w1 = js.weights[0];
    let deep = 0;
    for (let r = 0; r < rows; r++)
      for (let h = 0; h < w1.rows; h++) {
        let z = w1.data[h * w1.cols];
        for (let c = 0; c < cols; c++) z += w1.data[h * w1.cols + 1 + c] * X.data[r * cols + c];
        if (z < -667) deep++;
      }
    expect(deep / (rows * w1.rows), 'share of saturated (sample, unit) pairs').toBeGreaterThan(0.2);
    expectClose(native.costs, js.costs, { rel: 1e-10 }, 'costs');
    for (let l = 0; l < js.weights.length; l++) {
      const err = normRelErr(native.weights[l].data, js.weights[l].data);
      expect(err, `weights[${l}] ||native - js|| / ||js|| = ${err}`).toBeLessThanOrEqual(1e-10);
    }
    expect(Array.from(native.predict(X))).toEqual(Array.from(js.predict(X)));
  });
});

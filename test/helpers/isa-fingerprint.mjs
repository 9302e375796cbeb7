/**
 * For test/isa.test.ts: trains and predicts with the native backend on small synthetic data sets
 * chosen to reach every kernel's edge cases, and prints one SHA-256 per case over the bits of
 * everything computed (weights, costs, probabilities, labels, gradient). Run once per kernel path
 * (NEURALNET_MLP_ISA=avx2 / avx512) with the compiled package (dist/, so build first).
 *
 * Output: one JSON line { isa, bestIsa, cases: { [name]: hash } }.
 */
import { createHash } from 'node:crypto';
import { NeuralNetMLP, nativeAddonInfo } from '../../dist/index.js';

/** A small deterministic generator (xorshift32), so the data do not depend on the library. */
function generator(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** rows x cols values: `density` of them non-zero; bytes 1..255, or floats in [-1, 1). */
function dataset(kind, rows, cols, density, nOutput, seed) {
  const next = generator(seed);
  const data = kind === 'uint8' ? new Uint8Array(rows * cols) : kind === 'float32' ? new Float32Array(rows * cols) : new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    if (next() >= density) continue;
    data[i] = kind === 'uint8' ? 1 + Math.floor(next() * 255) : next() * 2 - 1;
  }
  const y = new Int32Array(rows);
  for (let r = 0; r < rows; r++) y[r] = Math.floor(next() * nOutput);
  return { X: { data, rows, cols }, y };
}

// Widths that leave a partial last vector on each path (50 units: 52 doubles, 56 floats), that
// need more than one gather tile (200), a multi-layer net with a wide layer (the blocked GEMM),
// feature counts with a partial last 64-byte group (100, 37), sparse and dense inputs.
const cases = [
  { name: 'bytes 100 features, 50 hidden', kind: 'uint8', cols: 100, density: 0.2, nHidden: 50, nOutput: 10, eta: 1e-4 },
  { name: 'bytes 100 features, 200 hidden', kind: 'uint8', cols: 100, density: 0.2, nHidden: 200, nOutput: 10, eta: 1e-4 },
  { name: 'float32 sparse 130 features, 13 hidden', kind: 'float32', cols: 130, density: 0.15, nHidden: 13, nOutput: 3, eta: 0.01 },
  { name: 'float64 dense 37 features, [40, 300] hidden', kind: 'float64', cols: 37, density: 1, nHidden: [40, 300], nOutput: 7, eta: 0.01 },
  { name: 'float64 sparse 64 features, 8 hidden', kind: 'float64', cols: 64, density: 0.3, nHidden: 8, nOutput: 2, eta: 0.01 },
];

function hashOf(parts) {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  return hash.digest('hex').slice(0, 16);
}

const out = {};
for (const c of cases) {
  const { X, y } = dataset(c.kind, 301, c.cols, c.density, c.nOutput, 7);
  for (const dtype of ['float64', 'float32']) {
    for (const threads of [1, 2]) {
      const model = new NeuralNetMLP({
        backend: 'native',
        dtype,
        threads,
        nFeatures: c.cols,
        nOutput: c.nOutput,
        nHidden: c.nHidden,
        l1: 0.01,
        l2: 0.1,
        alpha: 0.2,
        eta: c.eta,
        decreaseConst: 1e-3,
        minibatches: 4,
        epochs: 3,
        shuffle: true,
        randomState: 11,
      }).fitSync(X, y);
      const parts = [...model.weights.map((w) => w.data), model.costs, model.predictProba(X).data, model.predict(X)];
      if (dtype === 'float64') {
        const { cost, grads } = model.gradient(X, y);
        parts.push(Float64Array.of(cost), ...grads.map((g) => g.data));
      }
      out[`${c.name}, ${dtype}, ${threads} thread(s)`] = hashOf(parts);
    }
  }
}
const info = nativeAddonInfo();
console.log(JSON.stringify({ isa: info.isa, bestIsa: info.bestIsa, cases: out }));

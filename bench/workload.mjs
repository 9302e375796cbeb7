/**
 * The benchmark's workload, shared by the orchestrator (run.mjs) and every trial (trial.mjs):
 * the model shape and hyperparameters of the seed's MNIST example, the work count used for
 * GFLOP/s, data loading and small statistics helpers.
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_DIR = dirname(BENCH_DIR);
/** The package under test, imported by path (the compiled TypeScript in dist/). */
export const PACKAGE_ENTRY = join(REPO_DIR, 'dist', 'index.js');

/** The seed's MNIST example: 784-50-10, minibatches of 1,200 images, raw pixel values 0..255. */
export const MODEL = Object.freeze({
  nFeatures: 784,
  nHidden: 50,
  nOutput: 10,
  l1: 0,
  l2: 0.1,
  eta: 0.001,
  alpha: 0.001,
  decreaseConst: 1e-5,
  shuffle: true,
  randomState: 1,
});

/** Samples per minibatch (60,000 images in the seed's 50 minibatches). */
export const BATCH_SIZE = 1200;

/** How many minibatches split `samples` rows into parts of about {@link BATCH_SIZE}. */
export function minibatchesFor(samples) {
  return Math.max(1, Math.round(samples / BATCH_SIZE));
}

/**
 * Floating-point operations to train on one sample of a nFeatures-H-nOutput sigmoid MLP
 * (784-H-10 here), counted in multiply-adds (1 multiply-add = 2 FLOP):
 *
 *   forward pass           784*H + H*10     (input -> hidden, hidden -> output)
 *   weight gradients       784*H + H*10     (same shapes as the forward pass)
 *   hidden-layer delta     H*10             (output errors back through w2)
 *
 *   FLOP per sample = 2 * (2 * (784*H + H*10) + H*10);  H = 50: 159,800;  one 60,000-image epoch: 9.59 GFLOP.
 *
 * Biases, sigmoids, the cost, the regularisation and the weight update are not counted. Every
 * contender is credited with the same count, so GFLOP/s is an effective rate: a contender that
 * skips zero pixels or does extra work is still credited with exactly this much.
 */
export function flopPerSample(nHidden, nFeatures = MODEL.nFeatures, nOutput = MODEL.nOutput) {
  const forward = nFeatures * nHidden + nHidden * nOutput;
  return 2 * (2 * forward + nHidden * nOutput);
}

/** The formula above as text, recorded in the results file. */
export const FLOP_FORMULA = 'FLOP/epoch = samples * 2 * (2 * (784*H + H*10) + H*10)';

/**
 * Loads the MNIST training set through the package's own IDX reader, cut to its first
 * `samples` rows (views, no copies).
 */
export async function loadTrainSet(samples) {
  const { loadMnistSync, mnistDataDir } = await import(PACKAGE_ENTRY);
  const dir = mnistDataDir();
  const full = loadMnistSync(dir, 'train');
  const n = Math.min(samples, full.images.rows);
  const cols = full.images.cols;
  const train = {
    images: { data: full.images.data.subarray(0, n * cols), rows: n, cols },
    labels: full.labels.subarray(0, n),
  };
  return { dir, train };
}

/** All 10,000 MNIST test images and labels. */
export async function loadTestSet(dir) {
  const { loadMnistSync } = await import(PACKAGE_ENTRY);
  const t = loadMnistSync(dir, 't10k');
  return { images: t.images, labels: t.labels };
}

/** The p-th percentile (0..100) of an ascending array, nearest-rank. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function median(values) {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** Peak resident set size of this process so far, in MB (10^6 bytes; maxRSS is in KiB). */
export function maxRssMB() {
  return (process.resourceUsage().maxRSS * 1024) / 1e6;
}

/** Fraction of `predicted` equal to `labels`. */
export function accuracy(predicted, labels) {
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) hits++;
  return hits / labels.length;
}

/** Index of the largest of `values[offset .. offset+count)` relative to offset (ties: the lower index). */
export function argmax(values, offset = 0, count = values.length - offset) {
  let best = 0;
  let bestValue = values[offset];
  for (let c = 1; c < count; c++) {
    if (values[offset + c] > bestValue) {
      bestValue = values[offset + c];
      best = c;
    }
  }
  return best;
}

/** A fresh random permutation of 0..n-1 (Fisher-Yates over Math.random; for contenders without a seeded shuffle). */
export function permutation(n) {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

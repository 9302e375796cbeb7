/**
 * What the benchmark runs, as data: the two modes, the contenders, and the extra sections.
 * Every trial runs in a fresh process (bench/trial.mjs, or a Python contender's script).
 */

/** Settings per mode. `samples`: training images per epoch (the first rows of the MNIST training set). */
export const MODES = {
  full: {
    samples: 60000,
    /** Prediction throughput: all `images` test images at once. */
    predict: { images: 10000, minReps: 3, maxReps: 50, budgetMs: 2000 },
    latency: { calls: 10000, warmupCalls: 1000, budgetMs: 15000 },
    trialTimeoutMs: 15 * 60 * 1000,
  },
  quick: {
    samples: 6000,
    predict: { images: 1000, minReps: 1, maxReps: 20, budgetMs: 300 },
    latency: { calls: 1000, warmupCalls: 100, budgetMs: 500 },
    trialTimeoutMs: 2 * 60 * 1000,
  },
};

/**
 * The contenders, all on the same workload (data, 784-50-10 shape, minibatch size) except where
 * a field says otherwise.
 *
 * - `module`: the factory (bench/contenders/*.mjs, see trial.mjs for its interface) or, for
 *   `kind: 'python'`, the script that runs the trial.
 * - `needs`: what must be present, otherwise the contender is skipped with a message:
 *   `addon` (the package's native addon), `packages` (bench-only npm packages in bench/node_modules),
 *   `seed` (the seed's script and a Python with numpy and scipy), `python` (a Python that imports
 *   these modules).
 * - `warmup`: `{ epochs }` leading epochs of the same run, not timed; or `{ samples }`, one untimed
 *   pass over that many samples before the timed epochs (slow contenders: warms the JIT without
 *   paying for a whole epoch).
 * - `epochs`: timed epochs per mode.
 * - `maxSamples`: trains on at most this many samples and scales the epoch time up to the full
 *   epoch (marked in the table). Only for contenders too slow for a whole epoch.
 */
export const CONTENDERS = [
  {
    id: 'native-f64',
    label: 'neuralnet-mlp native float64',
    module: 'contenders/neuralnet-mlp.mjs',
    options: { backend: 'native', dtype: 'float64' },
    needs: { addon: true },
    warmup: { epochs: 1 },
    epochs: { full: 5, quick: 2 },
  },
  {
    id: 'native-f32',
    label: 'neuralnet-mlp native float32',
    module: 'contenders/neuralnet-mlp.mjs',
    options: { backend: 'native', dtype: 'float32' },
    needs: { addon: true },
    warmup: { epochs: 1 },
    epochs: { full: 5, quick: 2 },
  },
  {
    id: 'ts',
    label: 'neuralnet-mlp TypeScript float64',
    module: 'contenders/neuralnet-mlp.mjs',
    options: { backend: 'js', dtype: 'float64' },
    needs: {},
    warmup: { epochs: 1 },
    epochs: { full: 2, quick: 1 },
  },
  {
    id: 'seed-numpy',
    label: "the seed's numpy code",
    kind: 'python',
    module: 'contenders/seed_numpy.py',
    needs: { seed: true },
    warmup: { epochs: 1 },
    epochs: { full: 2, quick: 1 },
  },
  {
    id: 'torch',
    label: 'PyTorch float32',
    kind: 'python',
    module: 'contenders/torch_mlp.py',
    needs: { python: ['torch'] },
    warmup: { epochs: 1 },
    epochs: { full: 3, quick: 1 },
  },
  {
    id: 'sklearn',
    label: 'scikit-learn MLPClassifier',
    kind: 'python',
    module: 'contenders/sklearn_mlp.py',
    needs: { python: ['sklearn'] },
    warmup: { epochs: 1 },
    epochs: { full: 2, quick: 1 },
  },
  {
    id: 'tfjs-cpu',
    label: 'TensorFlow.js cpu',
    module: 'contenders/tfjs.mjs',
    options: { backend: 'cpu' },
    needs: { packages: ['@tensorflow/tfjs'] },
    warmup: { samples: { full: 6000, quick: 1200 } },
    epochs: { full: 1, quick: 1 },
    // Quick mode: 1,200 images, scaled (a whole quick epoch takes it several seconds).
    maxSamples: { quick: 1200 },
  },
  {
    id: 'tfjs-wasm',
    label: 'TensorFlow.js wasm',
    module: 'contenders/tfjs.mjs',
    options: { backend: 'wasm' },
    needs: { packages: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm'] },
    warmup: { samples: { full: 6000, quick: 1200 } },
    epochs: { full: 2, quick: 1 },
  },
  {
    id: 'brain',
    label: 'brain.js',
    module: 'contenders/brain.mjs',
    needs: { packages: ['brain.js'] },
    warmup: { samples: { full: 1200, quick: 600 } },
    epochs: { full: 1, quick: 1 },
    // About 70 s for a whole 60,000-image epoch here: time 12,000 images and scale.
    maxSamples: { full: 12000, quick: 1200 },
  },
];

/** Threads section: the same run with several thread counts (time ratio and final-weights identity). */
export const THREADS = {
  contenders: { full: ['native-f64', 'native-f32'], quick: ['native-f64'] },
  threads: [1, 2, 4],
  epochs: { full: 3, quick: 1 },
  /**
   * Rounds of the paired 1-vs-2-thread measurement (one process, epochs alternating). A round is
   * about a second; on this shared machine single pairs have ranged from 0.9x to 2.1x within one
   * run, so the median needs more than a handful.
   */
  pairedRounds: { full: 15, quick: 3 },
};

/**
 * The float32-vs-float64 target is judged on epochs paired in one process (native float64's
 * contender, its thread count, float64 and float32 epochs alternating), for the same reason.
 */
export const DTYPES = { contender: 'native-f64', pairedRounds: { full: 15, quick: 3 } };

/**
 * The kernel-paths section: the native contenders with each instruction-set path the addon can
 * run on this CPU (NEURALNET_MLP_ISA), one fresh process per trial (the path is fixed per
 * process), the paths alternating over the rounds; medians over the rounds.
 */
export const KERNEL_PATHS = {
  contenders: { full: ['native-f64', 'native-f32'], quick: ['native-f64'] },
  paths: ['generic', 'avx2', 'avx512'],
  epochs: { full: 3, quick: 1 },
  rounds: { full: 2, quick: 1 },
};

/**
 * Scaling section: one contender, one epoch per cell (after a warm-up epoch), for every hidden
 * size and training-set size; minibatches of about 1,200 samples throughout. Quick mode keeps
 * the cells whose work (hidden units x samples) is at most `maxWork.quick`.
 */
export const SCALING = {
  contender: 'native-f64',
  nHidden: [50, 100, 300, 1000],
  samples: [10000, 30000, 60000],
  maxWork: { full: Infinity, quick: 1.5e6 },
  // Timed epochs per cell (after the warm-up); a cell's time is their median, so one epoch slowed
  // by the shared machine does not decide the linearity check.
  epochs: { full: 3, quick: 1 },
  // Smaller cells time more epochs: as many as hold this much work (samples x nHidden per epoch
  // times epochs; the 60k-image, 50-unit cell's 3 epochs), at most maxEpochs. An epoch of 10k
  // images and 50 units takes about 7 ms, and the host's hiccups moved the median of 3 such
  // epochs from 6.4 to 8.4 ms between runs of the same build.
  minWork: { full: 3 * 60000 * 50, quick: 0 },
  maxEpochs: 30,
};

/** Timed epochs of a scaling cell (SCALING.epochs, more for cells with less work). */
export function scalingEpochs(modeName, samples, nHidden) {
  const min = SCALING.epochs[modeName];
  return Math.max(min, Math.min(SCALING.maxEpochs, Math.ceil(SCALING.minWork[modeName] / (samples * nHidden))));
}

/**
 * The compute floor (the issue's yardstick for the epoch): OpenBLAS's rate on a large square
 * matrix product (numpy's matmul, every core), float64 and float32, in a fresh Python process of
 * the same run. The epoch's work at that rate is the fastest a large-GEMM library would be on
 * this machine; the native contenders are judged against it.
 */
export const COMPUTE_FLOOR = {
  id: 'compute-floor',
  label: "OpenBLAS's large-matrix rate",
  kind: 'python',
  module: 'contenders/gemm_floor.py',
  needs: { python: ['numpy'] },
  n: { full: 3000, quick: 1000 },
  reps: { full: 7, quick: 3 },
  /**
   * The float32 epoch may take this much longer than its floor: the issue's 0.035 s against its
   * own 0.030 s floor (9.6 GFLOP at ~324 GFLOP/s). float64's target is its floor (0.07 s).
   */
  float32Slack: 0.035 / 0.03,
  /**
   * The targets against the floor are judged on paired rounds: each round measures OpenBLAS's rate
   * (`pairedReps` products per dtype after a warm-up, in a fresh process) and the native epochs
   * (`pairedEpochs` timed epochs after a warm-up, a fresh process per dtype) back to back, which
   * goes first alternating. Measured minutes apart, as the main table and the single floor trial
   * are, a shared host's slow spell can fall on either side (float32's ratio ranged from 0.84x to
   * 1.18x over one round of five runs).
   */
  pairedRounds: { full: 5, quick: 1 },
  pairedReps: { full: 3, quick: 1 },
  pairedEpochs: { full: 3, quick: 1 },
};

/**
 * Contender: TensorFlow.js (@tensorflow/tfjs) on its pure-JavaScript 'cpu' backend or on the
 * WebAssembly backend (@tensorflow/tfjs-backend-wasm, .wasm files loaded from node_modules).
 *
 * The same network and training step as the seed, written with tfjs ops and a manual loop over
 * minibatches (not the Layers API, whose losses average over the batch):
 *   - 784-H-10, sigmoid hidden and output units, weights uniform in [-1, 1); inputs are the raw
 *     pixel values 0..255 as float32 (the seed does not scale them either);
 *   - cost: cross-entropy of the independent sigmoid outputs against one-hot labels, summed over
 *     the minibatch (tf.losses.sigmoidCrossEntropy on the logits, reduction SUM: its gradient is
 *     the seed's `a3 - y`, without log(0) for saturated units), plus (l2 / 2) * sum of squared weights;
 *   - gradients by tfjs autodiff (optimizer.minimize), step by tf.train.momentum(eta, alpha).
 *     Its momentum (v = alpha*v + g; w -= eta*v) is the usual form, where the seed adds
 *     alpha times only the previous step; the arithmetic per step is the same.
 *   - a fresh shuffle every epoch, minibatches of the same size as the other contenders, gathered
 *     from one tensor holding the whole training set.
 * The learning-rate decay (decreaseConst 1e-5) is left out: over a few epochs it changes eta by
 * less than 0.01 %. tfjs computes in float32 only.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { BENCH_DIR, permutation } from '../workload.mjs';

const require = createRequire(join(BENCH_DIR, 'package.json'));

/** @param options {backend: 'cpu' | 'wasm'} */
export async function create(options, { train, model, minibatches }) {
  const tf = require('@tensorflow/tfjs');
  const details = { backend: options.backend, dtype: 'float32' };
  if (options.backend === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    // A folder path (with the trailing separator) where the package ships its .wasm files: read from disk, nothing fetched.
    const wasmDir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/';
    wasm.setWasmPaths(wasmDir);
    details.wasmVersion = wasm.version_wasm;
  }
  if (!(await tf.setBackend(options.backend))) throw new Error(`tfjs backend '${options.backend}' did not initialise`);
  await tf.ready();
  if (tf.getBackend() !== options.backend) throw new Error(`tfjs runs on '${tf.getBackend()}', not '${options.backend}'`);
  if (options.backend === 'wasm') {
    details.simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    details.threads = (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) ? 'multithreaded' : 1;
  } else {
    details.threads = 1;
  }

  const { nFeatures: nIn, nHidden: H, nOutput: nOut } = model;
  const n = train.images.rows;
  const X = tf.tensor2d(Float32Array.from(train.images.data), [n, nIn], 'float32');
  const Y = tf.tidy(() => tf.oneHot(tf.tensor1d(Int32Array.from(train.labels), 'int32'), nOut).toFloat());
  const seed = model.randomState;
  const w1 = tf.variable(tf.randomUniform([nIn, H], -1, 1, 'float32', seed));
  const b1 = tf.variable(tf.randomUniform([H], -1, 1, 'float32', seed + 1));
  const w2 = tf.variable(tf.randomUniform([H, nOut], -1, 1, 'float32', seed + 2));
  const b2 = tf.variable(tf.randomUniform([nOut], -1, 1, 'float32', seed + 3));
  const vars = [w1, b1, w2, b2];
  const optimizer = tf.train.momentum(model.eta, model.alpha);

  const logits = (x) => tf.sigmoid(x.matMul(w1).add(b1)).matMul(w2).add(b2);
  const cost = (x, y) => {
    const ce = tf.losses.sigmoidCrossEntropy(y, logits(x), undefined, 0, tf.Reduction.SUM);
    return ce.add(w1.square().sum().add(w2.square().sum()).mul(model.l2 / 2));
  };
  /** One minibatch step on rows `order[start..end)` of the training set. */
  const step = (order, start, end) => {
    tf.tidy(() => {
      const idx = tf.tensor1d(order.subarray(start, end), 'int32');
      const x = tf.gather(X, idx);
      const y = tf.gather(Y, idx);
      optimizer.minimize(() => cost(x, y), false, vars);
    });
  };
  /** Rows 0..rows-1 in `parts` nearly equal consecutive minibatches, like np.array_split. */
  const pass = (order, rows, parts) => {
    const base = Math.floor(rows / parts);
    const extra = rows % parts;
    let start = 0;
    for (let b = 0; b < parts; b++) {
      const end = start + base + (b < extra ? 1 : 0);
      step(order, start, end);
      start = end;
    }
  };

  let testData;
  let testRows = 0;
  const predictRows = (data, rows) =>
    tf.tidy(() => logits(tf.tensor2d(data, [rows, nIn], 'float32')).argMax(1)).dataSync();

  return {
    version: tf.version.tfjs,
    details,
    warmup(samples) {
      const rows = Math.min(samples, n);
      pass(permutation(rows), rows, Math.max(1, Math.round(rows / (n / minibatches))));
      w1.dataSync();
    },
    fit(epochs, onEpoch) {
      for (let e = 0; e < epochs; e++) {
        pass(permutation(n), n, minibatches);
        w1.dataSync(); // the epoch's work is done when the weights can be read
        onEpoch();
      }
    },
    preparePredict(test) {
      testData = Float32Array.from(test.images.data);
      testRows = test.images.rows;
    },
    /** Labels of all test images, from pixels already converted to float32 (tensor creation is timed). */
    predictAll: () => predictRows(testData, testRows),
    predictOne: (i) => predictRows(testData.subarray(i * nIn, (i + 1) * nIn), 1)[0],
  };
}

/**
 * Contender: this package (native float64 / float32 through the C++ addon, or the TypeScript
 * backend), imported from the compiled dist/. Uses only the public API.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ENTRY, REPO_DIR } from '../workload.mjs';

/** @param options {backend, dtype, threads?} */
export async function create(options, { train, model, minibatches }) {
  const { NeuralNetMLP, nativeAddonInfo } = await import(PACKAGE_ENTRY);
  const { version } = JSON.parse(readFileSync(join(REPO_DIR, 'package.json'), 'utf8'));
  const make = (epochs, { threads = options.threads, dtype = options.dtype } = {}) =>
    new NeuralNetMLP({
      nOutput: model.nOutput,
      nFeatures: model.nFeatures,
      nHidden: model.nHidden,
      l1: model.l1,
      l2: model.l2,
      eta: model.eta,
      alpha: model.alpha,
      decreaseConst: model.decreaseConst,
      shuffle: model.shuffle,
      randomState: model.randomState,
      minibatches,
      epochs,
      backend: options.backend,
      dtype,
      ...(threads === undefined ? {} : { threads }),
    });
  let nn = make(1);
  // fitSync and predict on the TypeScript backend run on the calling thread.
  const details = { backend: nn.backend, dtype: nn.options.dtype, threads: nn.backend === 'js' ? 1 : nn.options.threads };
  if (nn.backend === 'native') {
    details.isa = nativeAddonInfo().isa;
  }
  let testImages;
  let floatImages;
  const cols = model.nFeatures;
  return {
    version,
    details,
    /** Every epoch runs inside one fitSync (one warm-up epoch first is the trial's choice). */
    fit(epochs, onEpoch) {
      nn = make(epochs);
      nn.fitSync(train.images, train.labels, { onEpoch: () => onEpoch() });
    },
    /**
     * Seconds of the second epoch of a fresh two-epoch fit with these overrides of the options
     * ({ threads?, dtype? }; the first epoch also builds the input's index, so it is not timed).
     */
    secondEpochSeconds(overrides) {
      const marks = [];
      const start = performance.now();
      make(2, overrides).fitSync(train.images, train.labels, { onEpoch: () => marks.push(performance.now()) });
      return (marks[1] - (marks[0] ?? start)) / 1000;
    },
    preparePredict(test) {
      testImages = test.images;
      const scaled = (Float) => ({ data: Float.from(test.images.data, (v) => v / 255), rows: test.images.rows, cols });
      floatImages = { Float64Array: scaled(Float64Array), Float32Array: scaled(Float32Array) };
    },
    /** Labels of all test images, straight from the uint8 pixels. */
    predictAll: () => nn.predict(testImages),
    /** The same images as floats (pixels / 255), as a server parsing JSON would pass them. */
    inputKinds: ['Float64Array', 'Float32Array'],
    predictAllAs: (kind) => nn.predict(floatImages[kind]),
    predictOne: (i) => nn.predict({ data: testImages.data.subarray(i * cols, (i + 1) * cols), rows: 1, cols })[0],
    weightsHash() {
      const h = createHash('sha256');
      for (const w of nn.weights) h.update(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength));
      return h.digest('hex');
    },
  };
}

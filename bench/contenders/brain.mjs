/**
 * Contender: brain.js 1.x NeuralNetwork (pure JavaScript) with the same 784-H-10 sigmoid shape.
 *
 * brain.js trains one sample at a time (online gradient descent: no minibatches), needs inputs
 * scaled to [0, 1] (pixels / 255, converted once, before any timing) and takes them as plain
 * arrays, which it copies into Float32Arrays on every train() call (that copy is timed, it is part
 * of its API). One epoch = train(data, { iterations: 1 }): one pass over every sample. Learning
 * rate and momentum are brain.js's defaults (0.3, 0.1); its weights start from its own
 * (unseeded) random draw. Its cost per sample is a forward pass, a backward pass (it also
 * propagates errors into the input layer) and a momentum update of every weight.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BENCH_DIR, argmax } from '../workload.mjs';

const require = createRequire(join(BENCH_DIR, 'package.json'));

export async function create(options, { train, model }) {
  const brain = require('brain.js');
  const { version } = JSON.parse(readFileSync(join(dirname(require.resolve('brain.js')), 'package.json'), 'utf8'));
  const { nFeatures: nIn, nHidden: H, nOutput: nOut } = model;
  const scaled = (pixels, row) => {
    const out = new Array(nIn);
    for (let j = 0; j < nIn; j++) out[j] = pixels[row * nIn + j] / 255;
    return out;
  };
  const data = [];
  for (let i = 0; i < train.images.rows; i++) {
    const output = new Array(nOut).fill(0);
    output[train.labels[i]] = 1;
    data.push({ input: scaled(train.images.data, i), output });
  }
  const testInputs = [];

  const net = new brain.NeuralNetwork({ hiddenLayers: [H], activation: 'sigmoid' });
  const trainOptions = { iterations: 1, errorThresh: 1e-9, learningRate: 0.3, momentum: 0.1, log: false };
  const predictOne = (i) => {
    const out = net.run(testInputs[i]);
    return argmax(out, 0, nOut);
  };
  return {
    version,
    details: { training: 'one sample at a time', inputs: 'pixels / 255', threads: 1, dtype: 'float32' },
    /** brain.js sizes and initialises its network on the first train(): warm-up passes over the first `samples` samples. */
    warmup(samples) {
      net.train(data.slice(0, samples), trainOptions);
    },
    fit(epochs, onEpoch) {
      for (let e = 0; e < epochs; e++) {
        net.train(data, trainOptions);
        onEpoch();
      }
    },
    preparePredict(test) {
      for (let i = 0; i < test.images.rows; i++) testInputs.push(Float32Array.from(scaled(test.images.data, i)));
    },
    predictAll() {
      const labels = new Int32Array(testInputs.length);
      for (let i = 0; i < labels.length; i++) labels[i] = predictOne(i);
      return labels;
    },
    predictOne,
  };
}

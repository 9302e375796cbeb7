/**
 * A worker_threads script for test/concurrency.test.ts: trains one model on an MNIST slice with
 * the compiled package (dist/, so build first: `npx tsc -p tsconfig.json`) and posts back its
 * weights and costs. Two of these run at once to show that fits in separate threads (and the
 * addon loaded in each of them) do not disturb each other.
 *
 * workerData: { options: MLPOptions, start: number, rows: number }
 */
import { parentPort, workerData, threadId } from 'node:worker_threads';
import { NeuralNetMLP, loadMnistSync, mnistDataDir, nativeAddonInfo } from '../../dist/index.js';

const { options, start, rows } = workerData;
const set = loadMnistSync(mnistDataDir(), 'train');
const cols = set.images.cols;
const X = { data: set.images.data.slice(start * cols, (start + rows) * cols), rows, cols };
const y = set.labels.slice(start, start + rows);

const model = new NeuralNetMLP(options);
const epochs = [];
await model.fit(X, y, { onEpoch: (info) => epochs.push(info.epoch) });
const weights = model.weights.map((w) => w.data);
const costs = model.costs;
parentPort.postMessage(
  { threadId, backend: model.backend, addonPath: nativeAddonInfo().path ?? null, epochs, weights, costs },
  [...weights.map((w) => w.buffer), costs.buffer],
);

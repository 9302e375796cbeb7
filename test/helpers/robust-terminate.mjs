/**
 * Run as a program (by test/concurrency.test.ts, in a child process so that a crash cannot take
 * the test runner with it): starts worker threads that train or predict with the compiled
 * package (dist/), terminates each of them while its asynchronous work is in flight, and prints
 * "alive" when the process survived all of it.
 *
 *   node test/helpers/robust-terminate.mjs <native|js>
 *
 * The same file is the worker's script (workerData: { backend, mode, rows }).
 *
 * The crash this guards against happens only when the termination lands while a call's result is
 * being handed back to JavaScript, so predictAsync runs many short calls in a loop and is
 * terminated many times, at spread delays, before the fits are. Measured with an addon built
 * without NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: each of 8 runs of this file aborted within its
 * first 15 cycles (and each of 12 runs of 60 cycles within 10).
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

const PREDICT_CYCLES = 48;
const PREDICT_DELAYS_MS = [0, 1, 2, 3, 5, 8, 13, 21];
const FIT_DELAYS_MS = [5, 30, 100];

if (isMainThread) {
  const backend = process.argv[2] ?? 'native';
  const runs = [
    ...Array.from({ length: PREDICT_CYCLES }, (_, i) => ({
      mode: 'predictAsync',
      rows: 1_000,
      delay: PREDICT_DELAYS_MS[i % PREDICT_DELAYS_MS.length],
    })),
    ...FIT_DELAYS_MS.map((delay) => ({ mode: 'fit', rows: 10_000, delay })),
  ];
  for (const { mode, rows, delay } of runs) {
    const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { backend, mode, rows } });
    const failed = new Promise((_, reject) => worker.once('error', reject));
    await Promise.race([new Promise((resolve) => worker.once('message', resolve)), failed]);
    await new Promise((resolve) => setTimeout(resolve, delay));
    await worker.terminate();
    console.log(`${backend} ${mode}: worker terminated ${delay} ms into its asynchronous work`);
  }
  console.log('alive');
} else {
  const { NeuralNetMLP } = await import('../../dist/index.js');
  // Made-up pixels and labels: the worker starts at once, and what is computed does not matter.
  const { backend, mode, rows } = workerData;
  const data = new Uint8Array(rows * 784);
  for (let i = 0; i < data.length; i++) data[i] = Math.imul(i, 2654435761) >>> 24;
  const labels = Uint8Array.from({ length: rows }, (_, i) => i % 10);
  const X = { data, rows, cols: 784 };
  const model = new NeuralNetMLP({ nOutput: 10, nFeatures: 784, nHidden: 50, epochs: 20, minibatches: 50, randomState: 1, backend });
  if (mode === 'fit') {
    const running = model.fit(X, labels);
    parentPort.postMessage('running');
    await running;
  } else {
    let running = model.predictAsync(X);
    parentPort.postMessage('running');
    for (;;) {
      await running;
      running = model.predictAsync(X);
    }
  }
}

/**
 * Run as a program (by test/concurrency.test.ts, in a child process so that a crash cannot take
 * the test runner with it): starts worker threads that train or predict with the compiled
 * package (dist/), terminates each of them while its asynchronous work is in flight, and prints
 * "alive" when the process survived all of it.
 *
 *   node test/helpers/robust-terminate.mjs <native|js>
 *
 * The same file is the worker's script (workerData: { backend, mode }).
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

if (isMainThread) {
  const backend = process.argv[2] ?? 'native';
  for (const mode of ['fit', 'predictAsync']) {
    for (const delay of [5, 30, 100]) {
      const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { backend, mode } });
      const failed = new Promise((_, reject) => worker.once('error', reject));
      await Promise.race([new Promise((resolve) => worker.once('message', resolve)), failed]);
      await new Promise((resolve) => setTimeout(resolve, delay));
      await worker.terminate();
      console.log(`${backend} ${mode}: worker terminated ${delay} ms into its asynchronous work`);
    }
  }
  console.log('alive');
} else {
  const { NeuralNetMLP, loadMnistSync, mnistDataDir } = await import('../../dist/index.js');
  const set = loadMnistSync(mnistDataDir(), 'train');
  const rows = 10_000;
  const X = { data: set.images.data.slice(0, rows * 784), rows, cols: 784 };
  const model = new NeuralNetMLP({ nOutput: 10, nFeatures: 784, nHidden: 50, epochs: 20, minibatches: 50, randomState: 1, backend: workerData.backend });
  if (workerData.mode === 'fit') {
    const running = model.fit(X, set.labels.slice(0, rows));
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

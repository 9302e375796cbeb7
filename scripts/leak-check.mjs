#!/usr/bin/env node
/**
 * Leak check: many single-sample predictions and many short fits must leave resident memory
 * flat. Each phase warms up, collects garbage, samples RSS, runs, collects garbage again and
 * samples RSS; a phase PASSes when RSS grew by less than the bound (20 MB by default) after
 * its warm-up. Also reports the process's thread count, which would grow if fits left worker
 * threads or thread pools behind.
 *
 *   npm run build && node --expose-gc scripts/leak-check.mjs [--predicts 1000000] [--fits 100] [--full-fits 20] [--bound-mb 20]
 *
 * Phases: 1,000,000 single-sample `predict` calls (native backend, or the TypeScript one when the
 * addon is unavailable); 100 short `fit` calls per backend (500 images, 2 epochs); 5,000
 * `predictAsync` calls (native, after 1,000 to warm up) and 100 (TypeScript, each starts a
 * worker thread); 20 native fits on all 60,000 training images (1 epoch each, after 5 to warm up:
 * each builds a ~30 MB index of the non-zero pixels, in huge pages on Linux).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { NeuralNetMLP, loadMnistSync, mnistDataDir, nativeAvailable } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    predicts: { type: 'string', default: '1000000' },
    fits: { type: 'string', default: '100' },
    'full-fits': { type: 'string', default: '20' },
    'bound-mb': { type: 'string', default: '20' },
  },
});
const PREDICTS = Number(values.predicts);
const FITS = Number(values.fits);
const FULL_FITS = Number(values['full-fits']);
const BOUND_MB = Number(values['bound-mb']);

if (typeof globalThis.gc !== 'function') {
  console.error('Run with node --expose-gc scripts/leak-check.mjs');
  process.exit(2);
}
const gc = globalThis.gc;

const mb = (bytes) => (bytes / 1024 / 1024).toFixed(1);
function threads() {
  try {
    return Number(/Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}
async function settle() {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { ...process.memoryUsage(), threads: threads() };
}

const train = loadMnistSync(mnistDataDir(), 'train');
const test = loadMnistSync(mnistDataDir(), 't10k');
const backendForPredict = nativeAvailable() ? 'native' : 'js';
const results = [];

function report(name, before, after, extra = '') {
  const growth = after.rss - before.rss;
  const pass = growth < BOUND_MB * 1024 * 1024;
  results.push(pass);
  console.log(
    `${pass ? 'PASS' : 'FAIL'} ${name}: RSS ${mb(before.rss)} -> ${mb(after.rss)} MB (growth ${mb(growth)} MB, bound ${BOUND_MB} MB); ` +
      `heap ${mb(before.heapUsed)} -> ${mb(after.heapUsed)} MB; external ${mb(before.external)} -> ${mb(after.external)} MB; ` +
      `threads ${before.threads} -> ${after.threads}${extra}`,
  );
}

// 1. Single-sample predictions.
{
  const model = new NeuralNetMLP({ nOutput: 10, nFeatures: 784, nHidden: 50, l2: 0.1, epochs: 2, minibatches: 20, randomState: 1, backend: backendForPredict });
  model.fitSync({ data: train.images.data.subarray(0, 2000 * 784), rows: 2000, cols: 784 }, train.labels.subarray(0, 2000));
  const samples = Array.from({ length: 1000 }, (_, i) => ({ data: test.images.data.subarray(i * 784, (i + 1) * 784), rows: 1, cols: 784 }));
  const warmup = Math.min(50_000, Math.floor(PREDICTS / 10));
  let checksum = 0;
  for (let i = 0; i < warmup; i++) checksum += model.predict(samples[i % 1000])[0];
  const before = await settle();
  const started = performance.now();
  const trace = [];
  const step = Math.max(1, Math.floor(PREDICTS / 10));
  for (let i = 0; i < PREDICTS; i++) {
    checksum += model.predict(samples[i % 1000])[0];
    if ((i + 1) % step === 0) trace.push(mb(process.memoryUsage().rss));
  }
  const seconds = (performance.now() - started) / 1000;
  const after = await settle();
  report(
    `${PREDICTS} single-sample predict calls (${backendForPredict})`,
    before,
    after,
    `; ${((seconds * 1e6) / PREDICTS).toFixed(1)} µs per call; RSS every ${step} calls (no gc): ${trace.join(' ')} MB; checksum ${checksum}`,
  );
}

// 2. Short fits, and 3. asynchronous predictions, per backend.
for (const backend of nativeAvailable() ? ['native', 'js'] : ['js']) {
  const rows = 500;
  const X = { data: train.images.data.slice(0, rows * 784), rows, cols: 784 };
  const y = train.labels.slice(0, rows);
  const fit = async (i) => {
    const model = new NeuralNetMLP({ nOutput: 10, nFeatures: 784, nHidden: 30, l2: 0.1, epochs: 2, minibatches: 5, randomState: i, backend });
    await model.fit(X, y);
    return model;
  };
  for (let i = 0; i < 10; i++) await fit(i);
  let before = await settle();
  let peakThreads = before.threads;
  const started = performance.now();
  for (let i = 0; i < FITS; i++) {
    await fit(1000 + i);
    peakThreads = Math.max(peakThreads, threads());
  }
  const seconds = (performance.now() - started) / 1000;
  const noGcThreads = threads();
  let after = await settle();
  report(`${FITS} short fits (${backend}, ${rows} images x 2 epochs)`, before, after, `; ${seconds.toFixed(1)} s; threads before gc ${noGcThreads}, peak ${peakThreads}`);

  const model = await fit(1);
  const batch = { data: test.images.data.slice(0, 100 * 784), rows: 100, cols: 784 };
  // Warm-up long enough for every libuv pool thread to have its malloc arena.
  const [warm, calls] = backend === 'native' ? [1000, 5000] : [20, 100];
  for (let i = 0; i < warm; i++) await model.predictAsync(batch);
  before = await settle();
  const t1 = performance.now();
  const trace = [];
  for (let i = 0; i < calls; i++) {
    await model.predictAsync(batch);
    if ((i + 1) % (calls / 5) === 0) trace.push(mb(process.memoryUsage().rss));
  }
  const s1 = (performance.now() - t1) / 1000;
  after = await settle();
  report(
    `${calls} predictAsync calls (${backend}, 100 rows each)`,
    before,
    after,
    `; ${((s1 * 1000) / calls).toFixed(2)} ms per call; RSS every ${calls / 5} calls (no gc): ${trace.join(' ')} MB`,
  );
}

// 4. Native fits on the whole training set: the large index buffers must go back to the system.
if (nativeAvailable() && FULL_FITS > 0) {
  const fitAll = async () => {
    const model = new NeuralNetMLP({ nOutput: 10, nFeatures: 784, nHidden: 50, epochs: 1, minibatches: 50, randomState: 1, backend: 'native' });
    await model.fit(train.images, train.labels);
  };
  for (let i = 0; i < 5; i++) await fitAll();
  const before = await settle();
  const trace = [];
  const started = performance.now();
  for (let i = 0; i < FULL_FITS; i++) {
    await fitAll();
    if ((i + 1) % Math.max(1, FULL_FITS / 5) === 0) trace.push(mb(process.memoryUsage().rss));
  }
  const seconds = (performance.now() - started) / 1000;
  const after = await settle();
  report(`${FULL_FITS} full-MNIST fits (native, 60,000 images x 1 epoch)`, before, after, `; ${seconds.toFixed(1)} s; RSS every ${Math.max(1, FULL_FITS / 5)} fits (no gc): ${trace.join(' ')} MB`);
}

const pass = results.every(Boolean);
console.log(pass ? 'PASS' : 'FAIL');
process.exitCode = pass ? 0 : 1;

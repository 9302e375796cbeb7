/**
 * How long a cache line takes to pass between two threads of this process: the main thread and a
 * worker take turns incrementing one shared counter, each spinning until the other's increment
 * arrives, so each turn is one transfer of the line between the cores running them (plus the
 * cost of JavaScript's atomics, a few nanoseconds). The training threads exchange data this way
 * every minibatch (the forward pass splits samples, the gradient splits features), so the figure
 * explains thread scaling that the machine's ceiling (independent work) does not.
 */
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const counter = new Int32Array(workerData.buffer);
for (let i = 1; i < 2 * workerData.turns; i += 2) {
  while (Atomics.load(counter, 0) !== i);
  Atomics.store(counter, 0, i + 1);
}`;

/**
 * Nanoseconds per one-way transfer, averaged over `turns` round trips; null when they take longer
 * than `limitMs` (the two threads then share one core and take turns at the scheduler's pace).
 */
export async function lineTransferNs(turns = 200_000, limitMs = 5000) {
  const counter = new Int32Array(new SharedArrayBuffer(64));
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { buffer: counter.buffer, turns } });
  try {
    await new Promise((resolveOnline, reject) => {
      worker.once('online', resolveOnline);
      worker.once('error', reject);
    });
    const started = performance.now();
    const deadline = started + limitMs;
    let spins = 0;
    const waitFor = (value) => {
      while (Atomics.load(counter, 0) !== value) {
        if ((++spins & 0xffff) === 0 && performance.now() > deadline) return false;
      }
      return true;
    };
    for (let i = 0; i < 2 * turns; i += 2) {
      if (!waitFor(i)) return null;
      Atomics.store(counter, 0, i + 1);
    }
    if (!waitFor(2 * turns)) return null;
    return ((performance.now() - started) * 1e6) / (2 * turns);
  } finally {
    await worker.terminate();
  }
}

/**
 * One trial, run by run.mjs in a fresh Node.js process: `node bench/trial.mjs '<spec JSON>'`.
 * Loads the training data, builds the contender, trains (warm-up, then timed epochs), then
 * measures prediction of the test images (all 10,000 in full mode) and single-sample latency, and sends the
 * measurements to the parent over IPC (or prints them as JSON when started by hand).
 *
 * spec = {
 *   contender: { id, module, options },
 *   workload: {
 *     samples, nHidden, minibatches,
 *     warmup: { epochs } | { samples },   // epochs: extra leading epochs of the same fit, not timed;
 *                                         // samples: one untimed pass over that many samples first
 *     timedEpochs,
 *     predict: { images, minReps, maxReps, budgetMs } | null,   // the first `images` test images
 *     predictInputs?: boolean,  // also time predictions from the contender's other input kinds (inputKinds)
 *     latency: { calls, warmupCalls, budgetMs } | null,
 *     hashWeights: boolean,
 *     paired: { variants: [a, b], rounds, concurrent? } | undefined,   // instead of the above:
 *                                         // epochs with option overrides a and b (e.g.
 *                                         // { threads: 1 }, { dtype: 'float32' }) alternately in
 *                                         // this one process; with concurrent: true, each round
 *                                         // also times a's epoch twice at once (ceiling, below)
 *   }
 * }
 */
import { pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { resolve } from 'node:path';
import { BENCH_DIR, MODEL, accuracy, loadTestSet, loadTrainSet, maxRssMB, median, percentile } from './workload.mjs';

function send(message) {
  if (process.send) process.send(message, () => process.exit(message.ok ? 0 : 1));
  else {
    console.log(JSON.stringify(message, null, 2));
    process.exit(message.ok ? 0 : 1);
  }
}

async function main(spec) {
  const { contender, workload } = spec;
  const data = await loadTrainSet(workload.samples);
  const model = { ...MODEL, nHidden: workload.nHidden };
  const factory = await import(pathToFileURL(resolve(BENCH_DIR, contender.module)).href);
  const c = await factory.create(contender.options ?? {}, {
    train: data.train,
    model,
    minibatches: workload.minibatches,
  });

  if (workload.paired) return { id: contender.id, ...(await paired(c, workload.paired, data, spec)) };

  // Training: per-epoch wall time from the end of the previous epoch (or the start of the fit).
  const warmupEpochs = workload.warmup?.epochs ?? 0;
  let warmupSeconds = null;
  if (workload.warmup?.samples) {
    const t = performance.now();
    await c.warmup(workload.warmup.samples);
    warmupSeconds = (performance.now() - t) / 1000;
  }
  const marks = [];
  const start = performance.now();
  await c.fit(warmupEpochs + workload.timedEpochs, () => marks.push(performance.now()));
  if (marks.length !== warmupEpochs + workload.timedEpochs) {
    throw new Error(`expected ${warmupEpochs + workload.timedEpochs} epochs, saw ${marks.length}`);
  }
  const epochs = marks.map((m, i) => (m - (i === 0 ? start : marks[i - 1])) / 1000);
  if (warmupEpochs > 0) warmupSeconds = epochs.slice(0, warmupEpochs).reduce((a, b) => a + b, 0);
  const epochSeconds = epochs.slice(warmupEpochs);
  const result = {
    ok: true,
    id: contender.id,
    version: c.version,
    details: c.details,
    trainedSamples: data.train.images.rows,
    minibatches: workload.minibatches,
    warmup: workload.warmup ?? null,
    warmupSeconds,
    epochSeconds,
    sPerEpoch: median(epochSeconds),
    peakRssTrainMB: maxRssMB(),
  };
  if (workload.hashWeights && c.weightsHash) result.weightsHash = c.weightsHash();

  if (workload.predict || workload.latency) {
    const all = await loadTestSet(data.dir);
    const rows = Math.min(workload.predict?.images ?? all.images.rows, all.images.rows);
    const cols = all.images.cols;
    const test = { images: { data: all.images.data.subarray(0, rows * cols), rows, cols }, labels: all.labels.subarray(0, rows) };
    c.preparePredict(test);
    result.testAccuracy = accuracy(await c.predictAll(), test.labels); // also the warm-up call
    if (workload.predict) result.predict = measurePredict(c, workload.predict, test.images.rows);
    if (workload.predict && workload.predictInputs && c.inputKinds) {
      result.predictInputs = {};
      for (const kind of c.inputKinds) {
        c.predictAllAs(kind); // warm-up
        result.predictInputs[kind] = measurePredict({ predictAll: () => c.predictAllAs(kind) }, workload.predict, test.images.rows);
      }
    }
    if (workload.latency) result.latency = measureLatency(c, workload.latency, test.images.rows);
  }
  result.peakRssMB = maxRssMB();
  return result;
}

/**
 * Two variants of one contender (thread counts, float types) measured in pairs: each round times
 * one epoch with option overrides `a` and one with `b`, back to back in this process (which goes
 * first alternates), so a slow spell of a shared machine lands on both sides of a pair. The
 * ratio of each pair (a's time over b's), and their median, compare like with like even when
 * absolute times drift.
 */
async function paired(c, { variants: [a, b], rounds, concurrent = false }, data, spec) {
  const seconds = [[], []];
  const ratios = [];
  const twin = concurrent ? await startTwin(spec, c) : null;
  const ceiling = concurrent ? { seconds: [], ratios: [] } : null;
  try {
    for (let i = 0; i < rounds; i++) {
      // Which goes first rotates, so a slow spell does not always land on the same measurement.
      const steps = concurrent ? [0, 1, 2] : [0, 1];
      const order = steps.map((_, j) => steps[(i + j) % steps.length]);
      const s = [];
      for (const k of order) s[k] = k === 2 ? twin.both(a) : c.secondEpochSeconds([a, b][k]);
      seconds[0].push(s[0]);
      seconds[1].push(s[1]);
      ratios.push(s[0] / s[1]);
      if (ceiling) {
        ceiling.seconds.push(s[2]);
        ceiling.ratios.push((2 * s[0]) / ((s[2][0] + s[2][1]) / 2));
      }
    }
  } finally {
    twin?.stop();
  }
  const result = { ok: true, trainedSamples: data.train.images.rows, variants: [a, b], seconds, ratios, medianRatio: median(ratios) };
  if (ceiling) {
    // Each round's b-over-a ratio as a share of that round's ceiling: near 1 when the code gets
    // what the machine gives two threads at that moment.
    const shares = ratios.map((r, i) => r / ceiling.ratios[i]);
    result.ceiling = { ...ceiling, medianRatio: median(ceiling.ratios), shares, medianShare: median(shares) };
  }
  return result;
}

/**
 * The machine's own ceiling for running two threads' work at once: the same epoch as variant a
 * (one thread), in this thread and in a worker thread of this process at the same time, both
 * released by one atomic store. Perfectly independent halves of an epoch could at best run
 * 2 * alone / (the two concurrent epochs' mean) times faster than one thread alone: 2 when two
 * cores give twice one core's throughput, less when running both slows each (a shared host's
 * clock, caches or memory).
 */
async function startTwin(spec, c) {
  const control = new Int32Array(new SharedArrayBuffer(8)); // [0]: go (1) / stop (2); [1]: done
  const result = new Float64Array(new SharedArrayBuffer(8));
  const worker = new Worker(new URL(import.meta.url), { workerData: { spec, control, result }, argv: [] });
  const ready = new Promise((resolveReady, reject) => {
    worker.once('message', resolveReady);
    worker.once('error', reject);
  });
  await ready;
  return {
    both(overrides) {
      Atomics.store(control, 1, 0);
      Atomics.store(control, 0, 1);
      Atomics.notify(control, 0);
      const mine = c.secondEpochSeconds(overrides);
      if (Atomics.wait(control, 1, 0, 600_000) === 'timed-out') throw new Error('the concurrent epoch did not finish');
      if (Number.isNaN(result[0])) throw new Error('the concurrent epoch failed in its worker thread (its error is above)');
      return [mine, result[0]];
    },
    stop() {
      Atomics.store(control, 0, 2);
      Atomics.notify(control, 0);
      worker.unref();
    },
  };
}

/** The worker side of startTwin: the same contender and data, one epoch per signal. */
async function twinMain({ spec, control, result }) {
  const data = await loadTrainSet(spec.workload.samples);
  const factory = await import(pathToFileURL(resolve(BENCH_DIR, spec.contender.module)).href);
  const c = await factory.create(spec.contender.options ?? {}, {
    train: data.train,
    model: { ...MODEL, nHidden: spec.workload.nHidden },
    minibatches: spec.workload.minibatches,
  });
  const overrides = spec.workload.paired.variants[0];
  c.secondEpochSeconds(overrides); // the same warm-up the main thread's first fit gives it
  parentPort.postMessage('ready');
  for (;;) {
    Atomics.wait(control, 0, 0);
    if (Atomics.load(control, 0) === 2) return;
    Atomics.store(control, 0, 0);
    try {
      result[0] = c.secondEpochSeconds(overrides);
    } catch (error) {
      result[0] = NaN; // the main thread reports it (it cannot take messages while it waits)
      console.error(error);
    }
    Atomics.store(control, 1, 1);
    Atomics.notify(control, 1);
  }
}

/** Repeated predictions of all test images: at least minReps, then until budgetMs or maxReps. */
function measurePredict(c, { minReps, maxReps, budgetMs }, rows) {
  const times = [];
  const start = performance.now();
  while (times.length < minReps || (times.length < maxReps && performance.now() - start < budgetMs)) {
    const t = performance.now();
    c.predictAll();
    times.push(performance.now() - t);
  }
  const ms = median(times);
  return { images: rows, reps: times.length, msMedian: ms, msMin: Math.min(...times), imagesPerSecond: (rows / ms) * 1000 };
}

/** Single-image predictions, one test image after another, each timed on its own. */
function measureLatency(c, { calls, warmupCalls, budgetMs }, rows) {
  for (let i = 0; i < warmupCalls; i++) c.predictOne(i % rows);
  const ns = [];
  const start = performance.now();
  for (let i = 0; i < calls && (i < 100 || performance.now() - start < budgetMs); i++) {
    const t = process.hrtime.bigint();
    c.predictOne(i % rows);
    ns.push(Number(process.hrtime.bigint() - t));
  }
  ns.sort((a, b) => a - b);
  return { calls: ns.length, p50us: percentile(ns, 50) / 1000, p99us: percentile(ns, 99) / 1000, maxUs: ns[ns.length - 1] / 1000 };
}

if (isMainThread) {
  let spec;
  try {
    spec = JSON.parse(process.argv[2]);
  } catch {
    console.error("usage: node bench/trial.mjs '<spec JSON>' (run.mjs starts it)");
    process.exit(2);
  }
  main(spec).then(send, (error) => send({ ok: false, id: spec.contender?.id, error: error?.stack ?? String(error) }));
} else {
  twinMain(workerData);
}

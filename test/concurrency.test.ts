/**
 * Concurrency: asynchronous predictions and fits give exactly what the synchronous calls give,
 * predict during a fit reads a consistent snapshot, a second fit is refused with ERR_BUSY, an
 * abort stops within a minibatch and leaves a usable model, two fits in two worker threads match
 * the same fits run alone, and the event loop keeps turning during a large fit.
 *
 * Runs on every available backend (native only when the addon loads). The TypeScript backend's
 * worker and the worker-thread test use the compiled package: run `npx tsc -p tsconfig.json` first.
 */
import { spawn, spawnSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { NeuralNetMLP, nativeAvailable, type MLPOptions } from '../lib/index.js';
import { firstDifference, mnistSubset, rowsOf, sameBits } from './helpers/robust-data.js';

const backends = nativeAvailable() ? (['js', 'native'] as const) : (['js'] as const);
if (!nativeAvailable()) console.warn('concurrency tests: the native addon is not available; only the TypeScript backend is tested');

type Backend = (typeof backends)[number];

const test = mnistSubset('t10k', 3000);

/** Start of minibatch `b` of `n` rows split into `parts` like np.array_split. */
function splitStart(n: number, parts: number, b: number): number {
  const base = Math.floor(n / parts);
  return b * base + Math.min(b, n % parts);
}

function weightsOf(model: NeuralNetMLP): Float64Array[] | Float32Array[] {
  return model.weights.map((w) => w.data) as Float64Array[] | Float32Array[];
}

function expectSameWeights(actual: ArrayLike<number>[], expected: ArrayLike<number>[], what: string): void {
  expect(actual.length, what).toBe(expected.length);
  for (let l = 0; l < expected.length; l++) {
    const a = actual[l] as Float64Array;
    const e = expected[l] as Float64Array;
    expect(sameBits(a, e), `${what}: layer ${l} differs at ${firstDifference(a, e)}`).toBe(true);
  }
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe.each(backends)('%s backend', (backend: Backend) => {
  const base: MLPOptions = { nOutput: 10, nFeatures: 784, nHidden: 30, l2: 0.1, eta: 0.001, alpha: 0.001, decreaseConst: 1e-5, backend };

  it('50 concurrent predictAsync / predictProbaAsync calls equal predict / predictProba on each slice', async () => {
    const train = mnistSubset('train', 2000);
    const model = new NeuralNetMLP({ ...base, epochs: 2, minibatches: 20, randomState: 1 }).fitSync(train.X, train.y);
    // Slices of 1 to 600 rows from different places, some past 512 rows (the native multithreaded path).
    const slices = Array.from({ length: 50 }, (_, i) => {
      const rows = i % 10 === 9 ? 520 + i : 1 + ((i * 37) % 200);
      const start = (i * 53) % (test.X.rows - rows);
      return rowsOf(test.X, start, start + rows);
    });
    const started = performance.now();
    const results = await Promise.all(
      slices.map((s, i) => (i % 2 === 0 ? model.predictAsync(s) : model.predictProbaAsync(s).then((p) => p.data))),
    );
    const ms = performance.now() - started;
    console.log(`[concurrency] ${backend}: 50 concurrent async predictions (${slices.reduce((n, s) => n + s.rows, 0)} rows) in ${ms.toFixed(0)} ms`);
    slices.forEach((s, i) => {
      const expected = i % 2 === 0 ? model.predict(s) : model.predictProba(s).data;
      expect(sameBits(results[i] as Float64Array, expected as Float64Array), `slice ${i} (${s.rows} rows): ${firstDifference(results[i], expected)}`).toBe(true);
    });
  });

  it('predictWithProba and predictWithProbaAsync give predict and predictProba, bit for bit', async () => {
    const train = mnistSubset('train', 2000);
    const model = new NeuralNetMLP({ ...base, epochs: 2, minibatches: 20, randomState: 3 }).fitSync(train.X, train.y);
    // One row, a few rows, and more than 512 rows (the native multithreaded path).
    for (const rows of [1, 7, 600]) {
      const x = rowsOf(test.X, 100, 100 + rows);
      const labels = model.predict(x);
      const proba = model.predictProba(x);
      for (const [how, both] of [
        ['sync', model.predictWithProba(x)],
        ['async', await model.predictWithProbaAsync(x)],
      ] as const) {
        expect(both.labels, `${how}, ${rows} rows`).toBeInstanceOf(Int32Array);
        expect(sameBits(both.labels, labels), `${how} labels, ${rows} rows: ${firstDifference(both.labels, labels)}`).toBe(true);
        expect([both.proba.rows, both.proba.cols], `${how}, ${rows} rows`).toEqual([rows, 10]);
        expect(sameBits(both.proba.data as Float64Array, proba.data as Float64Array), `${how} proba, ${rows} rows: ${firstDifference(both.proba.data, proba.data)}`).toBe(true);
      }
    }
    expect(caught(() => model.predictWithProba({ data: new Float64Array(10), rows: 1, cols: 10 }))).toBeInstanceOf(RangeError);
    await expect(model.predictWithProbaAsync({ data: new Float64Array(784), rows: 2, cols: 784 })).rejects.toThrow(RangeError);
  });

  it('predict during an async fit answers from the last completed epoch (in onEpoch and between epochs) and never throws', async () => {
    const train = mnistSubset('train', 3000, 2000);
    const probe = rowsOf(test.X, 0, 300);
    const options: MLPOptions = { ...base, epochs: 4, minibatches: 10, randomState: 7 };
    // What a model holding the weights after k epochs predicts, k = 0..4.
    const refs = [0, 1, 2, 3, 4].map((k) => {
      const m = new NeuralNetMLP({ ...options, epochs: Math.max(k, 1) });
      if (k > 0) m.fitSync(train.X, train.y);
      return { pred: m.predict(probe), proba: m.predictProba(probe).data, weights: weightsOf(m) };
    });

    const model = new NeuralNetMLP(options);
    let completed = 0;
    const errors: unknown[] = [];
    const between: { completed: number; pred: Int32Array }[] = [];
    const asyncCalls: Promise<{ completed: number; pred?: Int32Array; error?: unknown }>[] = [];
    const inEpoch: { epoch: number; pred: Int32Array; proba: ArrayLike<number>; weights: ArrayLike<number>[] }[] = [];
    const rightAfter: { epoch: number; pred: Int32Array }[] = [];
    let ticks = 0;
    const timer = setInterval(() => {
      try {
        between.push({ completed, pred: model.predict(probe) });
        if (ticks++ % 10 === 0 && asyncCalls.length < 6) {
          const at = completed;
          asyncCalls.push(model.predictAsync(probe).then((pred) => ({ completed: at, pred }), (error: unknown) => ({ completed: at, error })));
        }
      } catch (error) {
        errors.push(error);
      }
    }, 1);
    try {
      await model.fit(train.X, train.y, {
        onEpoch: ({ epoch }) => {
          completed = epoch;
          inEpoch.push({ epoch, pred: model.predict(probe), proba: model.predictProba(probe).data, weights: weightsOf(model) });
          setImmediate(() => rightAfter.push({ epoch, pred: model.predict(probe) }));
        },
      });
    } finally {
      clearInterval(timer);
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors).toEqual([]);
    console.log(`[concurrency] ${backend}: ${between.length} predictions and ${asyncCalls.length} predictAsync calls during a 4-epoch fit`);
    expect(between.length).toBeGreaterThan(0);

    expect(inEpoch.map((e) => e.epoch)).toEqual([1, 2, 3, 4]);
    for (const e of inEpoch) {
      expect(sameBits(e.pred, refs[e.epoch].pred), `predict inside onEpoch(${e.epoch}) vs a model after ${e.epoch} epochs`).toBe(true);
      expect(sameBits(e.proba as Float64Array, refs[e.epoch].proba as Float64Array), `predictProba inside onEpoch(${e.epoch})`).toBe(true);
      expectSameWeights(e.weights, refs[e.epoch].weights, `weights inside onEpoch(${e.epoch})`);
    }
    for (const r of rightAfter) {
      const inside = inEpoch.find((e) => e.epoch === r.epoch)!;
      expect(sameBits(r.pred, inside.pred), `predict right after onEpoch(${r.epoch}) vs inside it`).toBe(true);
    }
    for (const b of between) {
      expect(sameBits(b.pred, refs[b.completed].pred), `predict with ${b.completed} epochs completed`).toBe(true);
    }
    for (const a of await Promise.all(asyncCalls)) {
      expect(a.error).toBeUndefined();
      expect(sameBits(a.pred!, refs[a.completed].pred), `predictAsync started with ${a.completed} epochs completed`).toBe(true);
    }
    expectSameWeights(weightsOf(model), refs[4].weights, 'weights after the fit');
  });

  it('a second fit, fitSync or partialFit while a fit runs is refused with ERR_BUSY and does not disturb it', async () => {
    const train = mnistSubset('train', 2000, 5000);
    const options: MLPOptions = { ...base, epochs: 3, minibatches: 10, randomState: 5 };
    const reference = new NeuralNetMLP(options).fitSync(train.X, train.y);
    const model = new NeuralNetMLP(options);
    const first = model.fit(train.X, train.y);
    await expect(model.fit(train.X, train.y)).rejects.toMatchObject({ code: 'ERR_BUSY' });
    expect(caught(() => model.fitSync(train.X, train.y))).toMatchObject({ code: 'ERR_BUSY' });
    await expect(model.partialFit(train.X, train.y)).rejects.toMatchObject({ code: 'ERR_BUSY' });
    await first;
    expectSameWeights(weightsOf(model), weightsOf(reference), 'weights of the fit that ran');
    expect(sameBits(model.costs, reference.costs)).toBe(true);
    // Free again once the fit is over.
    await model.partialFit(train.X, train.y);
    expect(model.costs.length).toBe(4 * 10);
    await model.fit(train.X, train.y);
    expect(model.costs.length).toBe(3 * 10);
  });

  it('abort mid-epoch rejects with AbortError; the model holds the weights after the last completed minibatch and trains again', async () => {
    const train = mnistSubset('train', 6000);
    const m = 200;
    const epochs = 3;
    // No shuffling, so minibatch b is rows splitStart(b)..splitStart(b + 1) in every epoch.
    const options: MLPOptions = { ...base, nHidden: 50, epochs, minibatches: m, shuffle: false, randomState: 3 };
    const t0 = performance.now();
    const reference = new NeuralNetMLP(options).fitSync(train.X, train.y);
    const epochMs = (performance.now() - t0) / epochs;
    const refCosts = reference.costs;

    const model = new NeuralNetMLP(options);
    const controller = new AbortController();
    // Abort while the first epoch runs (the TypeScript backend first starts its worker).
    const delay = Math.max(5, epochMs * 0.4) + (backend === 'js' ? 60 : 0);
    const timer = setTimeout(() => controller.abort(), delay);
    let epochsReported = 0;
    const error = await model.fit(train.X, train.y, { signal: controller.signal, onEpoch: () => epochsReported++ }).then(
      () => undefined,
      (e: unknown) => e,
    );
    clearTimeout(timer);
    expect(error, 'fit should reject when aborted').toBeInstanceOf(Error);
    expect((error as Error).name).toBe('AbortError');

    const done = model.costs.length;
    console.log(
      `[concurrency] ${backend}: aborted after ${delay.toFixed(0)} ms (epoch ≈ ${epochMs.toFixed(0)} ms): ${done} of ${epochs * m} minibatches done, ` +
        `${done % m === 0 ? 'at an epoch boundary' : `in epoch ${Math.floor(done / m) + 1}`}`,
    );
    expect(done).toBeLessThan(epochs * m);
    expect(Math.floor(done / m), 'epochs completed = onEpoch calls').toBe(epochsReported);
    // The completed minibatches are exactly the reference run's first `done`.
    expect(sameBits(model.costs, refCosts.subarray(0, done)), `costs: ${firstDifference(model.costs, refCosts.subarray(0, done))}`).toBe(true);
    // The weights are those after minibatch `done`: their cost on minibatch `done` is the reference's next cost.
    const b = done % m;
    const rows = rowsOf(train.X, splitStart(train.X.rows, m, b), splitStart(train.X.rows, m, b + 1));
    const labels = train.y.slice(splitStart(train.X.rows, m, b), splitStart(train.X.rows, m, b + 1));
    const { cost } = model.gradient(rows, labels);
    expect(Math.abs(cost - refCosts[done]) / Math.abs(refCosts[done]), `cost at the held weights ${cost} vs ${refCosts[done]}`).toBeLessThan(1e-9);
    for (const w of weightsOf(model)) expect(w.every(Number.isFinite)).toBe(true);

    // Usable: predicts (synchronously and not), and trains again.
    const probe = rowsOf(test.X, 0, 100);
    expect(sameBits(await model.predictAsync(probe), model.predict(probe))).toBe(true);
    await model.fit(train.X, train.y);
    expect(model.costs.length).toBe(epochs * m);
    expect(model.costs.every(Number.isFinite)).toBe(true);

    // An already-aborted signal: rejects at once and leaves the model as it was.
    const before = weightsOf(model);
    const aborted = AbortSignal.abort();
    await expect(model.fit(train.X, train.y, { signal: aborted })).rejects.toMatchObject({ name: 'AbortError' });
    expectSameWeights(weightsOf(model), before, 'weights after an already-aborted fit');
  });

  it('two models training in two worker threads give the same weights as the same fits run alone', async () => {
    // The workers run the compiled package; run the reference fits with it too.
    // (A computed specifier: type-checking must not need dist/ to exist.)
    const distIndex = new URL('../dist/index.js', import.meta.url).href;
    const dist = (await import(distIndex)) as typeof import('../lib/index.js');
    const jobs = [
      { options: { ...base, epochs: 2, minibatches: 10, randomState: 1 }, start: 0, rows: 3000 },
      { options: { ...base, nHidden: 20, epochs: 2, minibatches: 15, randomState: 2, dtype: 'float32' as const }, start: 3000, rows: 3000 },
    ];
    const script = new URL('./helpers/robust-train-worker.mjs', import.meta.url);
    type Reply = { threadId: number; backend: string; addonPath: string | null; epochs: number[]; weights: Float64Array[]; costs: Float64Array };
    const replies = await Promise.all(
      jobs.map(
        (job) =>
          new Promise<Reply>((resolve, reject) => {
            const worker = new Worker(script, { workerData: job });
            worker.once('message', (reply: Reply) => {
              resolve(reply);
              void worker.terminate();
            });
            worker.once('error', reject);
            worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before answering`)));
          }),
      ),
    );
    for (const [i, job] of jobs.entries()) {
      const reply = replies[i];
      expect(reply.backend).toBe(backend);
      if (backend === 'native') expect(reply.addonPath).toMatch(/neuralnet_mlp\.node$/);
      expect(reply.epochs).toEqual([1, 2]);
      const alone = new dist.NeuralNetMLP(job.options);
      const train = mnistSubset('train', job.rows, job.start);
      await alone.fit(train.X, train.y);
      expectSameWeights(reply.weights, weightsOf(alone), `model ${i + 1} (worker thread ${reply.threadId}) vs alone`);
      expect(sameBits(reply.costs, alone.costs), `model ${i + 1} costs`).toBe(true);
    }
    expect(replies[0].threadId).not.toBe(replies[1].threadId);
  });

  it('terminating a worker thread while it fits or predicts asynchronously does not crash the process', () => {
    // In a child process: a crash there fails this test instead of killing the test runner.
    const script = fileURLToPath(new URL('./helpers/robust-terminate.mjs', import.meta.url));
    const child = spawnSync(process.execPath, [script, backend], { encoding: 'utf8', timeout: 90_000 });
    const output = `exit status ${child.status}, signal ${child.signal}\n${child.stdout}\n${child.stderr}`;
    expect(child.status, output).toBe(0);
    expect(child.stdout, output).toContain('alive');
  });

  it('a Node Buffer given as X or y is left as it was by fit and predictAsync', async () => {
    // Buffer#slice is a view, not a copy: a copy made with it and transferred to a worker thread
    // would take the caller's memory with it.
    const rows = 64;
    const data = Buffer.alloc(rows * 784);
    for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 256;
    const labels = Buffer.alloc(rows);
    for (let i = 0; i < rows; i++) labels[i] = i % 10;
    const before = Buffer.from(data);
    const model = new NeuralNetMLP({ ...base, nHidden: 8, epochs: 2, minibatches: 2, randomState: 3 });
    await model.fit({ data, rows, cols: 784 }, labels);
    const predicted = await model.predictAsync({ data, rows, cols: 784 });
    expect(data.length).toBe(rows * 784);
    expect(labels.length).toBe(rows);
    expect(data.equals(before)).toBe(true);
    expect(predicted).toEqual(model.predict({ data, rows, cols: 784 }));
  });

  it.each([
    ['predictAsync', 'resize'],
    ['predictAsync', 'detach'],
    ['fit', 'resize'],
    ['fit', 'detach'],
  ])('%s gives its results unchanged when the input memory goes away meanwhile (%s)', async (mode, how) => {
    // In a child process: reading memory that was taken away can crash. Not spawnSync: under the
    // sanitizers a child takes a minute or more (their allocator copies on every realloc, and
    // each fresh page is a fault), too long to keep the test worker's thread blocked.
    const script = fileURLToPath(new URL('./helpers/robust-detach.mjs', import.meta.url));
    const child = await new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
      const proc = spawn(process.execPath, [script, backend, mode, how], { timeout: 240_000 });
      let stdout = '';
      let stderr = '';
      proc.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      proc.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
    });
    const output = `exit status ${child.status}, signal ${child.signal}\n${child.stdout}\n${child.stderr}`;
    expect(child.status, output).toBe(0);
    expect(JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '{}'), output).toMatchObject({ inputLengthAfter: 0, same: true });
  }, 250_000);

  it('fit on inputs above 16 MB (the native copy is split over threads) trains like fitSync', async () => {
    // 26,000 rows of bytes (20.4 MB) and 3,000 rows of float64 (18.8 MB), one epoch each: the
    // snapshot fit() takes must be every byte of the input, whichever thread copied it.
    const bytes = mnistSubset('train', 26_000);
    const floats = { data: Float64Array.from(bytes.X.data.subarray(0, 3000 * 784), (v) => v / 255), rows: 3000, cols: 784 };
    for (const [X, y, what] of [
      [bytes.X, bytes.y, 'Uint8Array'],
      [floats, bytes.y.subarray(0, 3000), 'Float64Array'],
    ] as const) {
      const options = { ...base, epochs: 1, minibatches: 20, randomState: 3 };
      const sync = new NeuralNetMLP(options).fitSync(X, y);
      const async = await new NeuralNetMLP(options).fit(X, y);
      expectSameWeights(weightsOf(async), weightsOf(sync), `${what}: fit vs fitSync`);
    }
  });

  it('the event loop keeps turning during await fit() on a large training set', async () => {
    // Native: all 60,000 training images, 10 epochs (two take only a few hundred milliseconds,
    // too few timer ticks for a 99th percentile); TypeScript: 10,000 images, 2 epochs. The strict
    // 20 ms check is scripts/eventloop-check.mjs; here only a bound no blocking fit could meet.
    const rows = backend === 'native' ? 60_000 : 10_000;
    const epochs = backend === 'native' ? 10 : 2;
    const train = mnistSubset('train', rows);
    const model = new NeuralNetMLP({ ...base, nHidden: 50, epochs, minibatches: 50, randomState: 1 });
    const histogram = monitorEventLoopDelay({ resolution: 10 });
    histogram.enable();
    // Let the histogram take its first sample, so a block at the start of fit() is measured too.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = performance.now();
    await model.fit(train.X, train.y);
    const ms = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 30));
    histogram.disable();
    const p = (q: number) => histogram.percentile(q) / 1e6;
    console.log(
      `[event loop] ${backend}: fit of ${rows} images x ${epochs} epochs took ${ms.toFixed(0)} ms; timer interval (resolution 10 ms) ` +
        `p50 ${p(50).toFixed(1)} ms, p99 ${p(99).toFixed(1)} ms, max ${(histogram.max / 1e6).toFixed(1)} ms over ${histogram.count} samples`,
    );
    expect(histogram.count).toBeGreaterThan(10);
    expect(p(99)).toBeLessThan(100);
  });
});

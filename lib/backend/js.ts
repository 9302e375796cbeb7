/**
 * The pure-TypeScript backend: the reference implementation of the kernels, and the fallback
 * when the addon is not available. Written for typed arrays with contiguous inner loops and
 * buffers reused across minibatches (no allocation per step).
 *
 * Shapes (m = samples in the minibatch, L = number of layers, n_l = sizes[l]):
 *   acts[0]   m x n_0    the minibatch's input rows, gathered (and converted from bytes)
 *   acts[l]   m x n_l    sigmoid activations of layer l (l = 1..L)
 *   logits    m x n_L    the output layer's pre-activations (for the cost and for predict)
 *   deltas[l] m x n_l    error terms (the seed's sigma3, sigma2, ...)
 *   grads[l]  n_l x (n_{l-1} + 1), bias in column 0, like the weights
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { stateError } from '../errors.js';
import { firstNonFinite } from '../validate.js';
import type { Backend, EpochParams, EpochRunner, FloatArray, InputArray, Matrix, NetState } from './types.js';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './js-worker.js';

type FloatCtor = Float64ArrayConstructor | Float32ArrayConstructor;

interface Workspace {
  capacity: number;
  ctor: FloatCtor;
  acts: FloatArray[];
  deltas: FloatArray[];
  logits: FloatArray;
  grads: FloatArray[];
  /** Layer 1's weights (forward) or gradient (backward), transposed: inputs x units. */
  transposed: FloatArray;
}

const workspaces = new WeakMap<NetState, Workspace>();

function workspaceFor(net: NetState, rows: number): Workspace {
  const ctor = net.weights[0].constructor as FloatCtor;
  const cached = workspaces.get(net);
  if (cached && cached.capacity >= rows && cached.ctor === ctor) return cached;
  const sizes = net.sizes;
  const L = sizes.length - 1;
  const acts: FloatArray[] = [];
  const deltas: FloatArray[] = [];
  for (let l = 0; l <= L; l++) {
    acts.push(new ctor(rows * sizes[l]));
    deltas.push(new ctor(l === 0 ? 0 : rows * sizes[l]));
  }
  const ws: Workspace = {
    capacity: rows,
    ctor,
    acts,
    deltas,
    logits: new ctor(rows * sizes[L]),
    grads: net.weights.map((w) => new ctor(w.length)),
    transposed: new ctor(sizes[0] * sizes[1]),
  };
  workspaces.set(net, ws);
  return ws;
}

/** Overflow-safe logistic function (as `scipy.special.expit`). */
export function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** log(1 + e^x) without overflow: the cross-entropy from a pre-activation, never log(0). */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** Copies rows `order[start..end)` of `x` into `dst` (m x cols), converting to floats. */
function gatherRows(x: Matrix, order: Int32Array, start: number, end: number, dst: FloatArray): void {
  const { data, cols } = x;
  for (let r = 0, i = start; i < end; r++, i++) {
    const src = order[i] * cols;
    const off = r * cols;
    for (let c = 0; c < cols; c++) dst[off + c] = data[src + c];
  }
}

/** `out[r, o] = w[o, 0] + dot(a[r, :], w[o, 1:])` for m rows: one layer's pre-activations. */
function affine(a: FloatArray, m: number, nIn: number, w: FloatArray, nOut: number, out: FloatArray): void {
  const stride = nIn + 1;
  for (let r = 0; r < m; r++) {
    const aOff = r * nIn;
    const zOff = r * nOut;
    let o = 0;
    // Two units at a time: each input value loaded once feeds two products.
    for (; o + 1 < nOut; o += 2) {
      const w0 = o * stride;
      const w1 = w0 + stride;
      let s0 = w[w0];
      let s1 = w[w1];
      for (let c = 0; c < nIn; c++) {
        const v = a[aOff + c];
        s0 += v * w[w0 + 1 + c];
        s1 += v * w[w1 + 1 + c];
      }
      out[zOff + o] = s0;
      out[zOff + o + 1] = s1;
    }
    for (; o < nOut; o++) {
      const w0 = o * stride;
      let s = w[w0];
      for (let c = 0; c < nIn; c++) s += a[aOff + c] * w[w0 + 1 + c];
      out[zOff + o] = s;
    }
  }
}

/**
 * Layer 1's pre-activations, skipping zero inputs (most pixels are zero): `out[r, :] = w[:, 0] +
 * sum over non-zero a[r, c] of a[r, c] * wT[c, :]`, with `wT` the weights transposed so each
 * input's weights for all units are contiguous. Same sums, in the same order, as `affine`.
 */
function affineSkippingZeros(a: FloatArray, m: number, nIn: number, w: FloatArray, nOut: number, out: FloatArray, wT: FloatArray): void {
  const stride = nIn + 1;
  for (let o = 0; o < nOut; o++) for (let c = 0; c < nIn; c++) wT[c * nOut + o] = w[o * stride + 1 + c];
  for (let r = 0; r < m; r++) {
    const aOff = r * nIn;
    const zOff = r * nOut;
    for (let o = 0; o < nOut; o++) out[zOff + o] = w[o * stride];
    for (let c = 0; c < nIn; c++) {
      const v = a[aOff + c];
      if (v === 0) continue;
      const wOff = c * nOut;
      for (let o = 0; o < nOut; o++) out[zOff + o] += v * wT[wOff + o];
    }
  }
}

/** Forward pass over `m` gathered rows; leaves activations in `ws.acts` and the last pre-activations in `ws.logits`. */
function forward(net: NetState, ws: Workspace, m: number): void {
  const sizes = net.sizes;
  const L = sizes.length - 1;
  for (let l = 1; l <= L; l++) {
    const z = l === L ? ws.logits : ws.acts[l];
    if (l === 1) affineSkippingZeros(ws.acts[0], m, sizes[0], net.weights[0], sizes[1], z, ws.transposed);
    else affine(ws.acts[l - 1], m, sizes[l - 1], net.weights[l - 1], sizes[l], z);
    const a = ws.acts[l];
    const n = m * sizes[l];
    for (let i = 0; i < n; i++) a[i] = sigmoid(z[i]);
  }
}

/** The seed's regularisation cost: `l1/2 * sum|w| + l2/2 * sum w^2` over non-bias weights of all layers. */
function regularisationCost(net: NetState, l1: number, l2: number): number {
  let abs = 0;
  let sq = 0;
  for (let l = 0; l < net.weights.length; l++) {
    const w = net.weights[l];
    const stride = net.sizes[l] + 1;
    for (let k = 0; k < w.length; k++) {
      if (k % stride === 0) continue;
      abs += Math.abs(w[k]);
      sq += w[k] * w[k];
    }
  }
  return (l1 / 2) * abs + (l2 / 2) * sq;
}

/**
 * Cost and gradient of one minibatch `order[start..end)` (the seed's `_feedforward`, `_get_cost`
 * and `_get_gradient`); the gradient, regularisation included, is left in `ws.grads`.
 */
function minibatchGradient(
  net: NetState,
  x: Matrix,
  labels: Int32Array,
  order: Int32Array,
  start: number,
  end: number,
  l1: number,
  l2: number,
  ws: Workspace,
): number {
  const sizes = net.sizes;
  const L = sizes.length - 1;
  const m = end - start;
  gatherRows(x, order, start, end, ws.acts[0]);
  forward(net, ws, m);

  // Output layer: cross-entropy from pre-activations, and sigma = a - y.
  const nOut = sizes[L];
  const aOut = ws.acts[L];
  const dOut = ws.deltas[L];
  const logits = ws.logits;
  let cost = 0;
  for (let r = 0; r < m; r++) {
    const label = labels[order[start + r]];
    const off = r * nOut;
    for (let o = 0; o < nOut; o++) {
      const z = logits[off + o];
      if (o === label) {
        cost += softplus(-z);
        dOut[off + o] = aOut[off + o] - 1;
      } else {
        cost += softplus(z);
        dOut[off + o] = aOut[off + o];
      }
    }
  }
  cost += regularisationCost(net, l1, l2);

  for (let l = L; l >= 1; l--) {
    const nIn = sizes[l - 1];
    const nUnits = sizes[l];
    const stride = nIn + 1;
    const d = ws.deltas[l];
    const aPrev = ws.acts[l - 1];
    const g = ws.grads[l - 1];
    const w = net.weights[l - 1];
    g.fill(0);
    if (l === 1) {
      // grad[:, 1:]^T accumulated input by input, skipping zero inputs, then transposed back.
      const gT = ws.transposed;
      gT.fill(0);
      for (let r = 0; r < m; r++) {
        const aOff = r * nIn;
        const dOff = r * nUnits;
        for (let o = 0; o < nUnits; o++) g[o * stride] += d[dOff + o];
        for (let c = 0; c < nIn; c++) {
          const v = aPrev[aOff + c];
          if (v === 0) continue;
          const gOff = c * nUnits;
          for (let o = 0; o < nUnits; o++) gT[gOff + o] += v * d[dOff + o];
        }
      }
      for (let o = 0; o < nUnits; o++) for (let c = 0; c < nIn; c++) g[o * stride + 1 + c] = gT[c * nUnits + o];
    } else {
      // grad = sigma^T . [1, a_prev]: a row of inputs scaled into each unit's gradient row.
      for (let r = 0; r < m; r++) {
        const aOff = r * nIn;
        for (let o = 0; o < nUnits; o++) {
          const dv = d[r * nUnits + o];
          if (dv === 0) continue; // saturated units contribute nothing
          const gOff = o * stride;
          g[gOff] += dv;
          for (let c = 0; c < nIn; c++) g[gOff + 1 + c] += dv * aPrev[aOff + c];
        }
      }
    }
    if (l > 1) {
      // sigma_prev = (sigma . W[:, 1:]) * a_prev * (1 - a_prev)
      const dPrev = ws.deltas[l - 1];
      for (let r = 0; r < m; r++) {
        const pOff = r * nIn;
        for (let c = 0; c < nIn; c++) dPrev[pOff + c] = 0;
        for (let o = 0; o < nUnits; o++) {
          const dv = d[r * nUnits + o];
          if (dv === 0) continue;
          const wOff = o * stride + 1;
          for (let c = 0; c < nIn; c++) dPrev[pOff + c] += dv * w[wOff + c];
        }
        for (let c = 0; c < nIn; c++) {
          const a = aPrev[pOff + c];
          dPrev[pOff + c] *= a * (1 - a);
        }
      }
    }
    // Regularisation on the non-bias columns, in the seed's order: + l2*w, then + l1*sign(w).
    if (l1 !== 0 || l2 !== 0) {
      for (let k = 0; k < g.length; k++) {
        if (k % stride === 0) continue;
        const wk = w[k];
        g[k] = g[k] + l2 * wk + l1 * Math.sign(wk);
      }
    }
  }
  return cost;
}

/** `delta = eta * grad; w -= delta + alpha * prevDelta; prevDelta = delta`, every layer. */
function applyUpdate(net: NetState, grads: FloatArray[], eta: number, alpha: number): void {
  for (let l = 0; l < net.weights.length; l++) {
    const w = net.weights[l];
    const prev = net.prevDelta[l];
    const g = grads[l];
    for (let k = 0; k < w.length; k++) {
      const delta = eta * g[k];
      w[k] -= delta + alpha * prev[k];
      prev[k] = delta;
    }
  }
}

/** Start of minibatch `b` of `n` samples split into `parts` like `np.array_split` (larger parts first). */
export function splitStart(n: number, parts: number, b: number): number {
  const base = Math.floor(n / parts);
  const extra = n % parts;
  return b * base + Math.min(b, extra);
}

const PREDICT_CHUNK = 512;

/** The compiled worker script (also when this module runs from TypeScript sources, e.g. in tests). */
function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  const script = here.endsWith('.ts') ? resolve(dirname(here), '..', '..', 'dist', 'backend', 'js-worker.js') : join(dirname(here), 'js-worker.js');
  if (!existsSync(script)) {
    throw stateError('ERR_NATIVE_UNAVAILABLE', `The TypeScript backend's worker script is missing (${script}); build the package with \`npm run build\``);
  }
  return script;
}

/** An exact copy of a typed array, to be moved to a worker (cloning a view copies its whole buffer). */
function exactCopy<T extends InputArray | Int32Array>(a: T): T {
  // Not a.slice(): a Node Buffer's slice is a view of the same memory, which the transfer to the
  // worker would then take from the caller.
  const copy =
    a instanceof Float64Array ? new Float64Array(a.length) : a instanceof Float32Array ? new Float32Array(a.length) : a instanceof Int32Array ? new Int32Array(a.length) : new Uint8Array(a.length);
  copy.set(a);
  return copy as T;
}

/**
 * One worker thread. Requests are answered one at a time, in order; while none is waiting the
 * worker does not keep the process alive.
 */
class WorkerClient {
  readonly #worker: Worker;
  readonly #queue: { message: WorkerRequest; transfer: ArrayBuffer[]; resolve: (reply: WorkerReply) => void; reject: (error: Error) => void }[] = [];
  #inFlight = false;
  #failed: Error | null = null;

  constructor(setup: WorkerSetup) {
    // The training data, if any, is moved to the worker as an exact copy.
    const data = setup.x ? exactCopy(setup.x.data) : null;
    const labels = setup.labels ? exactCopy(setup.labels) : null;
    const workerData: WorkerSetup = { ...setup, x: setup.x && data ? { ...setup.x, data } : null, labels };
    const transferList = [data, labels].filter((a) => a !== null).map((a) => a.buffer as ArrayBuffer);
    this.#worker = new Worker(workerScript(), { workerData, transferList });
    this.#worker.unref();
    this.#worker.on('message', (reply: WorkerReply) => {
      const done = this.#queue.shift();
      this.#inFlight = false;
      if (done) {
        if (reply.kind === 'error') done.reject(Object.assign(new Error(reply.message), { name: reply.name }));
        else done.resolve(reply);
      }
      this.#pump();
    });
    const fail = (error: Error) => {
      this.#failed ??= error;
      for (const waiting of this.#queue.splice(0)) waiting.reject(error);
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`The TypeScript backend's worker stopped unexpectedly (exit code ${code})`)));
  }

  /** False once the worker has died; a new one must be made. */
  get usable(): boolean {
    return this.#failed === null;
  }

  request(message: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<WorkerReply> {
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      this.#queue.push({ message, transfer, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#inFlight || this.#queue.length === 0) {
      if (this.#queue.length === 0) this.#worker.unref();
      return;
    }
    this.#inFlight = true;
    this.#worker.ref();
    const { message, transfer } = this.#queue[0];
    this.#worker.postMessage(message, transfer);
  }

  terminate(): void {
    this.#queue.splice(0);
    void this.#worker.terminate();
  }
}

/** The worker that answers predictAsync for every model on this backend, made on first use. */
let predictionWorker: WorkerClient | undefined;

/** The pure-TypeScript kernels. */
/**
 * Each row's class: the index of its first largest value (ties go to the lower label, like
 * `np.argmax`; comparisons with NaN are false). The native predictor computes the same in C++.
 */
export function argmaxRows(data: FloatArray, rows: number, cols: number, out: Int32Array): Int32Array {
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bestValue = data[r * cols];
    for (let c = 1; c < cols; c++) {
      const v = data[r * cols + c];
      if (v > bestValue) {
        bestValue = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

export const jsBackend: Backend = {
  name: 'js',
  firstNonFinite,
  copyInput: (data) => exactCopy(data),
  shuffleOrder: (rng, order) => rng.shuffle(order),

  createRunner(_net, x, labels): EpochRunner {
    let worker: WorkerClient | undefined;
    return {
      async epochAsync(net, order, params, costs, costOffset, stop) {
        worker ??= new WorkerClient({ sizes: net.sizes, x, labels, stop: stop ?? new Int32Array(new SharedArrayBuffer(4)) });
        const reply = await worker.request({
          kind: 'epoch',
          weights: net.weights.map((w) => w.slice()),
          prevDelta: net.prevDelta.map((p) => p.slice()),
          order,
          params,
          minibatches: params.minibatches,
        });
        if (reply.kind !== 'epoch') throw new Error('Unexpected reply from the TypeScript backend worker');
        net.weights.forEach((w, l) => w.set(reply.weights[l]));
        net.prevDelta.forEach((p, l) => p.set(reply.prevDelta[l]));
        costs.set(reply.costs.subarray(0, reply.done), costOffset);
        return reply.done;
      },
      dispose() {
        worker?.terminate();
        worker = undefined;
      },
      epoch(net, order, params: EpochParams, costs, costOffset, stop) {
        const n = order.length;
        const parts = params.minibatches;
        const ws = workspaceFor(net, Math.ceil(n / parts));
        for (let b = 0; b < parts; b++) {
          if (stop && stop[0] !== 0) return b;
          const start = splitStart(n, parts, b);
          const end = splitStart(n, parts, b + 1);
          costs[costOffset + b] = minibatchGradient(net, x, labels, order, start, end, params.l1, params.l2, ws);
          applyUpdate(net, ws.grads, params.eta, params.alpha);
        }
        return parts;
      },
    };
  },

  outputLogits(net, x, out) {
    const ws = workspaceFor(net, Math.min(PREDICT_CHUNK, x.rows));
    const nOut = net.sizes[net.sizes.length - 1];
    const cols = x.cols;
    for (let start = 0; start < x.rows; start += PREDICT_CHUNK) {
      const m = Math.min(PREDICT_CHUNK, x.rows - start);
      const a0 = ws.acts[0];
      for (let i = 0; i < m * cols; i++) a0[i] = x.data[start * cols + i];
      forward(net, ws, m);
      out.set(ws.logits.subarray(0, m * nOut), start * nOut);
    }
  },

  createPredictor(net, threads) {
    // Predictions read the weights directly; the caller makes a new predictor when they change.
    const fixed: NetState = { sizes: net.sizes, weights: net.weights.map((w) => w.slice()), prevDelta: [] };
    const nOut = net.sizes[net.sizes.length - 1];
    return {
      logits: (x, out) => jsBackend.outputLogits(fixed, x, out, threads),
      labels: (x, out) => {
        const logits = new (fixed.weights[0] instanceof Float32Array ? Float32Array : Float64Array)(x.rows * nOut);
        jsBackend.outputLogits(fixed, x, logits, threads);
        argmaxRows(logits, x.rows, nOut, out);
      },
    };
  },

  async outputLogitsAsync(net, x, out, threads) {
    if (!predictionWorker?.usable) {
      predictionWorker = new WorkerClient({ sizes: net.sizes, x: null, labels: null, stop: new Int32Array(new SharedArrayBuffer(4)) });
    }
    const data = exactCopy(x.data);
    const reply = await predictionWorker.request(
      { kind: 'logits', sizes: net.sizes, weights: net.weights, x: { data, rows: x.rows, cols: x.cols }, outLength: out.length, threads },
      [data.buffer as ArrayBuffer],
    );
    if (reply.kind !== 'logits') throw new Error('Unexpected reply from the TypeScript backend worker');
    out.set(reply.out);
  },

  costAndGradient(net, x, labels, order, l1, l2, grads) {
    const ws = workspaceFor(net, order.length);
    const cost = minibatchGradient(net, x, labels, order, 0, order.length, l1, l2, ws);
    for (let l = 0; l < grads.length; l++) grads[l].set(ws.grads[l]);
    return cost;
  },
};

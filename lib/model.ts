/**
 * NeuralNetMLP: the seed's sigmoid multi-layer perceptron, trained by minibatch gradient descent
 * with L1/L2 regularisation, momentum, a decreasing learning rate and shuffling.
 */
import { availableParallelism } from 'node:os';
import { invalidFile, invalidType, invalidValue, outOfRange, stateError, type ErrorCode } from './errors.js';
import { type BackendChoice, resolveBackend } from './backend/index.js';
import { argmaxRows } from './backend/js.js';
import type { Backend, Dtype, EpochParams, EpochRunner, FloatArray, InputArray, Matrix, NetState, Predictor } from './backend/types.js';
import { RandomState } from './random.js';
import {
  type DecodedModel,
  type ModelJSON,
  type StoredOptions,
  type TrainingInfo,
  FORMAT_TAG,
  FORMAT_VERSION,
  MODEL_LIMITS,
  decodeModel,
  decodeModelFile,
  encodeSafetensors,
  parseModel,
  readModelFile,
  readModelFileSync,
  stringifyModel,
} from './format.js';
import { writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import {
  type LabelsLike,
  type MagnitudeBound,
  type MatrixLike,
  FLOAT32_MAX,
  booleanArg,
  checkKnownKeys,
  finiteAtLeast,
  integerIn,
  isPlainObject,
  oneOf,
  toLabels,
  toMatrix,
} from './validate.js';

/** How the learning rate shrinks from epoch to epoch. */
export type EtaSchedule = 'compounding' | 'inverse-time';

/** Options of {@link NeuralNetMLP}. Defaults are the seed's. */
export interface MLPOptions {
  /** Number of output units: the number of classes (the seed's `n_output`). */
  nOutput: number;
  /** Number of input features (`n_features`), e.g. 784 for 28x28 images. */
  nFeatures: number;
  /** Hidden units (`n_hidden`); an array gives several hidden layers. Default 30. */
  nHidden?: number | readonly number[];
  /** L1 regularisation strength (`l1`). Default 0. */
  l1?: number;
  /** L2 regularisation strength (`l2`). Default 0. */
  l2?: number;
  /** Passes over the training set (`epochs`). Default 500. */
  epochs?: number;
  /** Initial learning rate (`eta`). Default 0.001. */
  eta?: number;
  /** Momentum factor (`alpha`): `w -= delta + alpha * previousDelta`. Default 0. */
  alpha?: number;
  /** Learning-rate decrease constant (`decrease_const`). Default 0. See {@link MLPOptions.etaSchedule}. */
  decreaseConst?: number;
  /**
   * `'compounding'` (default, what the seed's code does): at the start of epoch `i` (0-based)
   * `eta /= 1 + decreaseConst * i`, so the shrink compounds. `'inverse-time'` (what the seed's
   * docstring describes): `eta = eta0 / (1 + decreaseConst * i)`.
   */
  etaSchedule?: EtaSchedule;
  /** Shuffle the training set every epoch (`shuffle`). Default true. */
  shuffle?: boolean;
  /** Minibatches per epoch (`minibatches`), split like `np.array_split`. Default 1. */
  minibatches?: number;
  /**
   * Seed (`random_state`), an integer in [0, 2^32 - 1]. Initial weights and every epoch's
   * permutation are then bit-identical to numpy's after `np.random.seed(randomState)`.
   * Default: seeded from the operating system's random source.
   */
  randomState?: number | null;
  /** `'auto'` (default): the C++ addon when it loads, otherwise TypeScript with a warning. */
  backend?: BackendChoice;
  /** Precision of weights and arithmetic. Default `'float64'`. */
  dtype?: Dtype;
  /** Threads the native backend may use; results do not depend on it. Default: all cores. */
  threads?: number;
}

/** The options after defaults, as the model uses them. */
export interface ResolvedOptions extends StoredOptions {
  nOutput: number;
  nFeatures: number;
  nHidden: number[];
  backend: BackendChoice;
  dtype: Dtype;
  threads: number;
}

/** Progress reported after every epoch. */
export interface EpochInfo {
  /** 1-based epoch number. */
  epoch: number;
  /** Total epochs of this fit. */
  epochs: number;
  /** Average of the epoch's minibatch costs. */
  cost: number;
  /** Learning rate used in this epoch. */
  eta: number;
  /** Milliseconds since the fit started. */
  elapsedMs: number;
}

/** Options of {@link NeuralNetMLP.fit} and {@link NeuralNetMLP.fitSync}. */
export interface FitOptions {
  /** Called after every epoch. */
  onEpoch?: (info: EpochInfo) => void;
  /** Stops the fit (only with `fit`); the promise rejects with an `AbortError`. */
  signal?: AbortSignal;
}

/** A weight matrix in the seed's layout: `rows` units x `cols` = inputs + 1, bias in column 0. */
export type WeightMatrix = Matrix<FloatArray>;

/** What {@link NeuralNetMLP.predictWithProba} returns. */
export interface LabelsAndProba {
  /** One label per row: what `predict` gives. */
  labels: Int32Array;
  /** The output layer's activations, `rows = X.rows`, `cols = nOutput`: what `predictProba` gives. */
  proba: Matrix<FloatArray>;
}

const OPTION_NAMES = [
  'nOutput',
  'nFeatures',
  'nHidden',
  'l1',
  'l2',
  'epochs',
  'eta',
  'alpha',
  'decreaseConst',
  'etaSchedule',
  'shuffle',
  'minibatches',
  'randomState',
  'backend',
  'dtype',
  'threads',
] as const;

/** Largest number of weights in one layer (keeps every index within 32 bits). */
const MAX_LAYER_WEIGHTS = 2 ** 31 - 1;
const MAX_UNITS = 2 ** 24;
const MAX_HIDDEN_LAYERS = 63;
const MAX_COSTS = 2 ** 30;
/** What a float32 model can take from float64 input: beyond it, float32 would hold Infinity and every result from it NaN. */
const FLOAT32_INPUT: MagnitudeBound = { max: FLOAT32_MAX, expected: `a number a float32 model can hold (magnitude at most ${FLOAT32_MAX})` };

function resolveOptions(options: unknown): ResolvedOptions {
  if (!isPlainObject(options)) throw invalidType('options', 'an object of model options', options);
  checkKnownKeys('options', options, OPTION_NAMES);
  const o = options as Partial<Record<(typeof OPTION_NAMES)[number], unknown>>;
  const opt = <T>(name: string, value: unknown, fallback: T, check: (n: string, v: unknown) => T): T =>
    value === undefined ? fallback : check(`options.${name}`, value);

  const nOutput = integerIn('options.nOutput', o.nOutput, 1, MAX_UNITS);
  const nFeatures = integerIn('options.nFeatures', o.nFeatures, 1, MAX_UNITS);
  let nHidden: number[];
  if (o.nHidden === undefined) nHidden = [30];
  else if (typeof o.nHidden === 'number') nHidden = [integerIn('options.nHidden', o.nHidden, 1, MAX_UNITS)];
  else if (Array.isArray(o.nHidden)) {
    if (o.nHidden.length < 1 || o.nHidden.length > MAX_HIDDEN_LAYERS) {
      throw outOfRange('options.nHidden', `an array of 1 to ${MAX_HIDDEN_LAYERS} layer sizes`, o.nHidden);
    }
    // An index loop, not map: map skips the holes of a sparse array.
    const hidden = o.nHidden as readonly unknown[];
    nHidden = [];
    for (let i = 0; i < hidden.length; i++) nHidden.push(integerIn(`options.nHidden[${i}]`, hidden[i], 1, MAX_UNITS));
  } else throw invalidType('options.nHidden', 'a positive integer or an array of positive integers', o.nHidden);

  const sizes = [nFeatures, ...nHidden, nOutput];
  for (let l = 0; l + 1 < sizes.length; l++) {
    if (sizes[l + 1] * (sizes[l] + 1) > MAX_LAYER_WEIGHTS) {
      throw outOfRange(`the weights of layer ${l + 1} (units x (inputs + 1))`, `at most ${MAX_LAYER_WEIGHTS}`, sizes[l + 1] * (sizes[l] + 1));
    }
  }
  const randomState =
    o.randomState === undefined || o.randomState === null ? null : integerIn('options.randomState', o.randomState, 0, 2 ** 32 - 1);
  const resolved: ResolvedOptions = {
    nOutput,
    nFeatures,
    nHidden,
    l1: opt('l1', o.l1, 0, (n, v) => finiteAtLeast(n, v, 0)),
    l2: opt('l2', o.l2, 0, (n, v) => finiteAtLeast(n, v, 0)),
    epochs: opt('epochs', o.epochs, 500, (n, v) => integerIn(n, v, 1)),
    eta: opt('eta', o.eta, 0.001, (n, v) => finiteAtLeast(n, v, 0, true)),
    alpha: opt('alpha', o.alpha, 0, (n, v) => finiteAtLeast(n, v, 0)),
    decreaseConst: opt('decreaseConst', o.decreaseConst, 0, (n, v) => finiteAtLeast(n, v, 0)),
    etaSchedule: opt('etaSchedule', o.etaSchedule, 'compounding' as EtaSchedule, (n, v) =>
      oneOf(n, v, ['compounding', 'inverse-time'] as const),
    ),
    shuffle: opt('shuffle', o.shuffle, true, booleanArg),
    minibatches: opt('minibatches', o.minibatches, 1, (n, v) => integerIn(n, v, 1)),
    randomState,
    backend: opt('backend', o.backend, 'auto' as BackendChoice, (n, v) => oneOf(n, v, ['auto', 'native', 'js'] as const)),
    dtype: opt('dtype', o.dtype, 'float64' as Dtype, (n, v) => oneOf(n, v, ['float64', 'float32'] as const)),
    threads: opt('threads', o.threads, availableParallelism(), (n, v) => integerIn(n, v, 1, 1024)),
  };
  // One cost is kept per minibatch: keep that array within what a typed array can hold.
  if (resolved.minibatches > MAX_COSTS) {
    throw outOfRange('options.minibatches', `an integer in [1, ${MAX_COSTS}] (one cost is kept per minibatch)`, resolved.minibatches);
  }
  if (resolved.epochs * resolved.minibatches > MAX_COSTS) {
    throw outOfRange('options.epochs', `at most ${Math.floor(MAX_COSTS / resolved.minibatches)} epochs of ${resolved.minibatches} minibatches`, resolved.epochs);
  }
  return resolved;
}

function checkFitOptions(name: string, value: unknown, allowSignal: boolean): FitOptions {
  if (value === undefined) return {};
  const known = allowSignal ? ['onEpoch', 'signal'] : ['onEpoch'];
  if (!isPlainObject(value)) throw invalidType(name, `an object { ${known.map((k) => `${k}?`).join(', ')} }`, value);
  checkKnownKeys(name, value, known);
  if (value.onEpoch !== undefined && typeof value.onEpoch !== 'function') {
    throw invalidType(`${name}.onEpoch`, 'a function', value.onEpoch);
  }
  if (value.signal !== undefined && !(value.signal instanceof AbortSignal)) {
    throw invalidType(`${name}.signal`, 'an AbortSignal', value.signal);
  }
  return value as FitOptions;
}

/** The learning rate of epoch `i` (0-based) given the previous epoch's (`eta0` before epoch 0). */
function nextEta(previous: number, eta0: number, decreaseConst: number, i: number, schedule: EtaSchedule): number {
  return schedule === 'compounding' ? previous / (1 + decreaseConst * i) : eta0 / (1 + decreaseConst * i);
}

/** The learning rate of every epoch, 0-based, under the chosen schedule (what `fit` uses). */
export function learningRates(eta0: number, decreaseConst: number, epochs: number, schedule: EtaSchedule = 'compounding'): Float64Array {
  finiteAtLeast('eta0', eta0, 0, true);
  finiteAtLeast('decreaseConst', decreaseConst, 0);
  integerIn('epochs', epochs, 0, MAX_COSTS);
  oneOf('schedule', schedule, ['compounding', 'inverse-time'] as const);
  const rates = new Float64Array(epochs);
  let eta = eta0;
  for (let i = 0; i < epochs; i++) rates[i] = eta = nextEta(eta, eta0, decreaseConst, i, schedule);
  return rates;
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return Object.assign(new Error('The fit was aborted', { cause: reason }), { name: 'AbortError', code: 'ABORT_ERR' satisfies ErrorCode });
}

/** The output layer's activations from its pre-activations, in place. */
function sigmoidInPlace(m: Matrix<FloatArray>): Matrix<FloatArray> {
  const d = m.data;
  for (let i = 0; i < d.length; i++) d[i] = 1 / (1 + Math.exp(-d[i]));
  return m;
}

/** Each row's label (argmax of the pre-activations), then the activations in place. */
function labelsAndProba(logits: Matrix<FloatArray>): LabelsAndProba {
  const labels = argmaxRows(logits.data, logits.rows, logits.cols, new Int32Array(logits.rows));
  return { labels, proba: sigmoidInPlace(logits) };
}

/** A training run prepared from validated arguments. */
interface FitPlan {
  x: Matrix<InputArray>;
  labels: Int32Array;
  epochs: number;
  /** Costs of this run's minibatches; `costCount` of them are filled. */
  costs: Float64Array;
  costCount: number;
  order: Int32Array;
  /** Set to 1 to stop after the current minibatch (shared with the native worker thread). */
  stop: Int32Array;
  started: number;
  /** The learning rate of the epoch in progress. */
  eta: number;
}

/**
 * The seed's `NeuralNetMLP` (Python Machine Learning, ch. 12): a sigmoid multi-layer perceptron
 * for classification, trained by minibatch gradient descent on the cross-entropy cost.
 *
 * @example
 * const nn = new NeuralNetMLP({ nOutput: 10, nFeatures: 784, nHidden: 50, l2: 0.1, epochs: 1000,
 *   eta: 0.001, alpha: 0.001, decreaseConst: 1e-5, minibatches: 50, randomState: 1 });
 * await nn.fit(X, y);
 * const labels = nn.predict(Xtest);
 */
export class NeuralNetMLP {
  /** The options in force, defaults filled in. */
  readonly options: Readonly<ResolvedOptions>;
  readonly #backend: Backend;
  readonly #net: NetState;
  readonly #rng: RandomState;
  /** Minibatch costs: the first `#costCount` entries hold them; the rest is room to grow. */
  #costs: Float64Array = new Float64Array(0);
  #costCount = 0;
  #busy = false;
  #training: TrainingInfo = {};
  /** Epochs trained since the last `fit` began (drives the learning-rate schedule). */
  #epochsDone = 0;
  /** The learning rate of the last completed epoch (the compounding schedule's state); `eta` before any. */
  #eta: number;
  /** While an asynchronous fit runs: the weights of its last completed epoch, for predict. */
  #snapshot: FloatArray[] | null = null;
  /** Packed weights for predict, made on first use; dropped whenever the weights change. */
  #predictor: Predictor | null = null;

  /**
   * Builds the network and draws its initial weights, uniform in [-1, 1), layer by layer.
   * @throws TypeError / RangeError naming the offending option.
   * @throws Error with code `ERR_NATIVE_UNAVAILABLE` when `backend: 'native'` and the addon is not built.
   */
  constructor(options: MLPOptions) {
    this.options = Object.freeze(resolveOptions(options));
    this.#eta = this.options.eta;
    this.#backend = resolveBackend(this.options.backend);
    this.#rng = this.options.randomState === null ? RandomState.fromEntropy() : new RandomState(this.options.randomState);
    const sizes = Int32Array.from([this.options.nFeatures, ...this.options.nHidden, this.options.nOutput]);
    const Ctor = this.options.dtype === 'float32' ? Float32Array : Float64Array;
    const weights: FloatArray[] = [];
    const prevDelta: FloatArray[] = [];
    for (let l = 0; l + 1 < sizes.length; l++) {
      const w = new Ctor(sizes[l + 1] * (sizes[l] + 1));
      this.#rng.uniform(-1, 1, w);
      weights.push(w);
      prevDelta.push(new Ctor(w.length));
    }
    this.#net = { sizes, weights, prevDelta };
  }

  /** The backend doing the work: `'native'` (C++ addon) or `'js'` (pure TypeScript). */
  get backend(): 'native' | 'js' {
    return this.#backend.name;
  }

  /** Layer sizes `[nFeatures, ...nHidden, nOutput]`. */
  get layerSizes(): number[] {
    return Array.from(this.#net.sizes);
  }

  /** The seed's `cost_`: the cost of every minibatch of the last fit, in order (epochs x minibatches). */
  get costs(): Float64Array {
    return this.#costs.slice(0, this.#costCount);
  }

  /**
   * A copy of the weights, one matrix per layer in the seed's layout: layer `l` has
   * `rows = units` and `cols = inputs + 1` with the bias in column 0 (`w1`, `w2`, ...).
   */
  get weights(): WeightMatrix[] {
    return this.#stableWeights().map((w, l) => ({
      data: w.slice(),
      rows: this.#net.sizes[l + 1],
      cols: this.#net.sizes[l] + 1,
    }));
  }

  /**
   * `X` checked as a feature matrix for this model, its float data scanned once by the backend:
   * for a float32 model, also for values beyond float32's range (float32 input cannot hold any).
   */
  #matrix(X: MatrixLike): Matrix<InputArray> {
    const bound = this.options.dtype === 'float32' ? FLOAT32_INPUT : undefined;
    return toMatrix('X', X, this.options.nFeatures, (data, max) => this.#backend.firstNonFinite(data, max), bound);
  }

  /**
   * X for a call that the native backend answers on another thread while the caller's code runs
   * on. The addon holds the caller's array, but not its memory: an ArrayBuffer transferred away
   * (detached) or shrunk meanwhile would leave that thread reading freed memory. So it gets a
   * private copy, unless the memory cannot go away (a SharedArrayBuffer can be neither detached
   * nor shrunk) or is already ours (rows given as arrays). The TypeScript backend copies X into
   * its worker itself.
   */
  #matrixForAsync(X: MatrixLike): Matrix<InputArray> {
    const x = this.#matrix(X);
    const own = x.data !== (X as { data?: unknown }).data;
    if (this.backend !== 'native' || own || x.data.buffer instanceof SharedArrayBuffer) return x;
    return { ...x, data: this.#backend.copyInput(x.data) };
  }

  /** The weights to read: during an asynchronous fit, those of its last completed epoch. */
  #stableWeights(): FloatArray[] {
    return this.#snapshot ?? this.#net.weights;
  }

  #plan(X: MatrixLike, y: LabelsLike, epochs: number, async = false): FitPlan {
    const o = this.options;
    const x = async ? this.#matrixForAsync(X) : this.#matrix(X);
    const labels = toLabels('y', y, x.rows, o.nOutput);
    if (o.minibatches > x.rows) {
      throw outOfRange('options.minibatches', `an integer in [1, ${x.rows}] (at most one minibatch per row of X)`, o.minibatches);
    }
    const order = new Int32Array(x.rows);
    for (let i = 0; i < order.length; i++) order[i] = i;
    return {
      x,
      labels,
      epochs,
      costs: new Float64Array(epochs * o.minibatches),
      costCount: 0,
      order,
      stop: new Int32Array(new SharedArrayBuffer(4)),
      started: performance.now(),
      eta: this.#eta,
    };
  }

  /** Claims the model for a training run; `reset` starts afresh like the seed's `fit`. */
  #begin(reset: boolean): void {
    if (this.#busy) throw stateError('ERR_BUSY', 'This model is already being trained; wait for the running fit to finish');
    this.#busy = true;
    if (reset) {
      for (const p of this.#net.prevDelta) p.fill(0);
      this.#epochsDone = 0;
      this.#eta = this.options.eta;
      this.#costs = new Float64Array(0);
      this.#costCount = 0;
    }
  }

  /** Prepares epoch `k` of the plan: shuffles (composing permutations like the seed) and sets the learning rate. */
  #epochParams(plan: FitPlan): EpochParams {
    const o = this.options;
    // order[permutation(n)], composing with the earlier epochs' shuffles like the seed's X[idx].
    if (o.shuffle) this.#backend.shuffleOrder(this.#rng, plan.order);
    // Committed in #afterEpoch only if the epoch completes, so an aborted one does not shrink it twice.
    plan.eta = nextEta(this.#eta, o.eta, o.decreaseConst, this.#epochsDone, o.etaSchedule);
    return { eta: plan.eta, alpha: o.alpha, l1: o.l1, l2: o.l2, minibatches: o.minibatches, threads: o.threads };
  }

  /** Records an epoch's outcome (`done` minibatches of it completed) and reports it. */
  #afterEpoch(plan: FitPlan, done: number, onEpoch?: (info: EpochInfo) => void): void {
    const m = this.options.minibatches;
    const first = plan.costCount;
    plan.costCount += done;
    if (this.#costCount + done > this.#costs.length) {
      // Grown by doubling, so recording every epoch of a long fit costs linear time in all.
      const grown = new Float64Array(Math.max(this.#costCount + done, 2 * this.#costs.length));
      grown.set(this.#costs.subarray(0, this.#costCount));
      this.#costs = grown;
    }
    this.#costs.set(plan.costs.subarray(first, first + done), this.#costCount);
    this.#costCount += done;
    this.#predictor = null;
    if (done < m) return;
    this.#eta = plan.eta;
    this.#epochsDone++;
    // The last cost is informational; a model file holds only a finite one.
    const finalCost = this.#costs[this.#costCount - 1];
    this.#training = { samples: plan.x.rows, epochs: this.#epochsDone, ...(Number.isFinite(finalCost) ? { finalCost } : {}) };
    if (!onEpoch) return;
    let sum = 0;
    for (let b = first; b < first + m; b++) sum += plan.costs[b];
    onEpoch({
      epoch: first / m + 1,
      epochs: plan.epochs,
      cost: sum / m,
      eta: this.#eta,
      elapsedMs: performance.now() - plan.started,
    });
  }

  #runSync(plan: FitPlan, onEpoch?: (info: EpochInfo) => void): void {
    let runner: EpochRunner | undefined;
    try {
      runner = this.#backend.createRunner(this.#net, plan.x, plan.labels, this.options.threads);
      for (let k = 0; k < plan.epochs; k++) {
        const params = this.#epochParams(plan);
        const done = runner.epoch(this.#net, plan.order, params, plan.costs, plan.costCount, plan.stop);
        this.#afterEpoch(plan, done, onEpoch);
      }
    } finally {
      runner?.dispose?.();
      this.#predictor = null;
      this.#busy = false;
    }
  }

  async #runAsync(plan: FitPlan, onEpoch?: (info: EpochInfo) => void, signal?: AbortSignal): Promise<void> {
    const stop = plan.stop;
    const onAbort = () => Atomics.store(stop, 0, 1);
    signal?.addEventListener('abort', onAbort, { once: true });
    // predict() during the run answers from this copy of the last completed epoch's weights.
    this.#snapshot = this.#net.weights.map((w) => w.slice());
    let runner: EpochRunner | undefined;
    try {
      runner = this.#backend.createRunner(this.#net, plan.x, plan.labels, this.options.threads);
      for (let k = 0; k < plan.epochs; k++) {
        if (signal?.aborted) throw abortError(signal);
        const params = this.#epochParams(plan);
        let done: number;
        if (runner.epochAsync) {
          done = await runner.epochAsync(this.#net, plan.order, params, plan.costs, plan.costCount, stop);
        } else {
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (signal?.aborted) throw abortError(signal);
          done = runner.epoch(this.#net, plan.order, params, plan.costs, plan.costCount, stop);
        }
        this.#snapshot.forEach((s, l) => s.set(this.#net.weights[l]));
        this.#predictor = null;
        this.#afterEpoch(plan, done, onEpoch);
        if (done < this.options.minibatches && signal?.aborted) throw abortError(signal);
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      runner?.dispose?.();
      this.#snapshot = null;
      this.#predictor = null;
      this.#busy = false;
    }
  }

  /**
   * Learns the weights from `X` (rows = samples, cols = nFeatures) and labels `y`, blocking
   * until done. Prefer {@link NeuralNetMLP.fit} in servers.
   * @param X `{ data, rows, cols }` (Float64Array, Float32Array or Uint8Array; bytes are used as they are) or `number[][]`.
   * @param y integer class labels in `0..nOutput-1`, one per row.
   * @throws TypeError / RangeError naming the offending argument.
   */
  fitSync(X: MatrixLike, y: LabelsLike, options?: Omit<FitOptions, 'signal'>): this {
    const { onEpoch } = checkFitOptions('options', options, false);
    const plan = this.#plan(X, y, this.options.epochs);
    this.#begin(true);
    this.#runSync(plan, onEpoch);
    return this;
  }

  /**
   * Learns the weights like {@link NeuralNetMLP.fitSync} without blocking the event loop: on the
   * native backend every epoch runs on a worker thread (an N-API async worker); on the TypeScript
   * backend, in a `worker_threads` worker. `onEpoch` reports progress (on this thread) after
   * every epoch. When `signal` aborts, training stops after the current minibatch; the model keeps
   * the weights of the last completed minibatch and the promise rejects with an `AbortError`.
   * While it runs, `predict` answers from the weights of the last completed epoch, and another
   * `fit` rejects with `ERR_BUSY`.
   */
  async fit(X: MatrixLike, y: LabelsLike, options?: FitOptions): Promise<this> {
    const { onEpoch, signal } = checkFitOptions('options', options, true);
    const plan = this.#plan(X, y, this.options.epochs, true);
    if (signal?.aborted) throw abortError(signal);
    this.#begin(true);
    await this.#runAsync(plan, onEpoch, signal);
    return this;
  }

  /**
   * Continues training on `X`, `y` from where the model is: its weights, momentum, learning rate
   * (the schedule goes on from the epochs already done) and random stream. Costs are appended to
   * {@link NeuralNetMLP.costs}. Runs `options.epochs` epochs (default 1) off the event loop like `fit`.
   */
  async partialFit(X: MatrixLike, y: LabelsLike, options?: FitOptions & { epochs?: number }): Promise<this> {
    const { epochs = 1, ...rest } = (isPlainObject(options) ? options : {}) as FitOptions & { epochs?: number };
    if (options !== undefined && !isPlainObject(options)) throw invalidType('options', 'an object { epochs?, onEpoch?, signal? }', options);
    const { onEpoch, signal } = checkFitOptions('options', rest, true);
    const more = integerIn('options.epochs', epochs, 1);
    const room = Math.floor((MAX_COSTS - this.#costCount) / this.options.minibatches);
    if (more > room) {
      throw outOfRange('options.epochs', `at most ${room} more epochs of ${this.options.minibatches} minibatches (one cost is kept per minibatch, at most ${MAX_COSTS}; ${this.#costCount} are kept already)`, more);
    }
    const plan = this.#plan(X, y, more, true);
    if (signal?.aborted) throw abortError(signal);
    this.#begin(false);
    await this.#runAsync(plan, onEpoch, signal);
    return this;
  }

  /**
   * The output layer's activations (sigmoid of its pre-activations), one row per sample:
   * `rows = X.rows`, `cols = nOutput`. Rows need not sum to 1 (independent sigmoids, as the seed).
   */
  predictProba(X: MatrixLike): Matrix<FloatArray> {
    const logits = this.#logits(X);
    return sigmoidInPlace(logits);
  }

  /** Class labels: the argmax of the output layer for every row of `X` (ties go to the lower label). */
  predict(X: MatrixLike): Int32Array {
    const x = this.#matrix(X);
    const labels = new Int32Array(x.rows);
    this.#currentPredictor().labels(x, labels);
    return labels;
  }

  /**
   * {@link NeuralNetMLP.predict}'s labels and {@link NeuralNetMLP.predictProba}'s activations from
   * one forward pass (half the work of calling both, as a server answering with both does). The
   * labels are the argmax of the output layer's pre-activations, as `predict`'s, so they equal
   * `predict(X)` even where two outputs' sigmoids round to the same probability.
   */
  predictWithProba(X: MatrixLike): LabelsAndProba {
    return labelsAndProba(this.#logits(X));
  }

  /** {@link NeuralNetMLP.predictWithProba} off the main thread, like {@link NeuralNetMLP.predictAsync}. */
  async predictWithProbaAsync(X: MatrixLike): Promise<LabelsAndProba> {
    return labelsAndProba(await this.#logitsAsync(X));
  }

  /**
   * {@link NeuralNetMLP.predict} off the main thread (native: an N-API async worker; TypeScript:
   * a worker thread), for large batches. `X` is copied first, so it may change or go away
   * meanwhile; except data on a SharedArrayBuffer on the native backend, which is read in place
   * (its memory cannot go away, but what the call computes from changed rows is undefined).
   */
  async predictAsync(X: MatrixLike): Promise<Int32Array> {
    const { data, rows, cols } = await this.#logitsAsync(X);
    return argmaxRows(data, rows, cols, new Int32Array(rows));
  }

  /** {@link NeuralNetMLP.predictProba} off the main thread, like {@link NeuralNetMLP.predictAsync}. */
  async predictProbaAsync(X: MatrixLike): Promise<Matrix<FloatArray>> {
    const logits = await this.#logitsAsync(X);
    return sigmoidInPlace(logits);
  }

  async #logitsAsync(X: MatrixLike): Promise<Matrix<FloatArray>> {
    const x = this.#matrixForAsync(X);
    const nOut = this.options.nOutput;
    const data = this.options.dtype === 'float32' ? new Float32Array(x.rows * nOut) : new Float64Array(x.rows * nOut);
    // A private copy of the weights: a fit may update the model's own arrays meanwhile.
    const net = { sizes: this.#net.sizes, weights: this.#stableWeights().map((w) => w.slice()), prevDelta: [] };
    await this.#backend.outputLogitsAsync(net, x, data, this.options.threads);
    return { data, rows: x.rows, cols: nOut };
  }

  #logits(X: MatrixLike): Matrix<FloatArray> {
    const x = this.#matrix(X);
    const nOut = this.options.nOutput;
    const data = this.options.dtype === 'float32' ? new Float32Array(x.rows * nOut) : new Float64Array(x.rows * nOut);
    this.#currentPredictor().logits(x, data);
    return { data, rows: x.rows, cols: nOut };
  }

  /** The predictor for the current weights (made on first use after they change). */
  #currentPredictor(): Predictor {
    this.#predictor ??= this.#backend.createPredictor({ sizes: this.#net.sizes, weights: this.#stableWeights(), prevDelta: [] }, this.options.threads);
    return this.#predictor;
  }

  /**
   * The seed's MLPGradientCheck: relative error `||num - grad|| / (||num|| + ||grad||)` between
   * central differences and backpropagation over every weight, on all rows of `X`, in float64.
   * With `l1 > 0` the numerical side differentiates the objective the updates minimise,
   * `J + l2/2 * sum w^2 + l1 * sum|w|` (the seed reports `l1/2 * sum|w|` in its cost but steps
   * along `l1 * sign(w)`; both are kept for parity).
   */
  gradientCheck(X: MatrixLike, y: LabelsLike, options: { epsilon?: number } = {}): number {
    if (!isPlainObject(options)) throw invalidType('options', 'an object { epsilon? }', options);
    checkKnownKeys('options', options, ['epsilon']);
    const epsilon = options.epsilon === undefined ? 1e-5 : finiteAtLeast('options.epsilon', options.epsilon, 0, true);
    // A step beyond 1 estimates no derivative, and near 1e308 the differences overflow to NaN.
    if (epsilon > 1) throw outOfRange('options.epsilon', 'a finite number > 0 and <= 1', epsilon);
    const x = this.#matrix(X);
    const labels = toLabels('y', y, x.rows, this.options.nOutput);
    const net: NetState = {
      sizes: this.#net.sizes,
      weights: this.#stableWeights().map((w) => Float64Array.from(w)),
      prevDelta: [],
    };
    const order = new Int32Array(x.rows);
    for (let i = 0; i < order.length; i++) order[i] = i;
    const { l1, l2 } = this.options;
    const grads = net.weights.map((w) => new Float64Array(w.length));
    const scratch = net.weights.map((w) => new Float64Array(w.length));
    this.#backend.costAndGradient(net, x, labels, order, l1, l2, grads);
    let diff2 = 0;
    let num2 = 0;
    let grad2 = 0;
    for (let l = 0; l < net.weights.length; l++) {
      const w = net.weights[l];
      const stride = net.sizes[l] + 1;
      for (let k = 0; k < w.length; k++) {
        const saved = w[k];
        w[k] = saved - epsilon;
        const cost1 = this.#backend.costAndGradient(net, x, labels, order, l1, l2, scratch);
        w[k] = saved + epsilon;
        const cost2 = this.#backend.costAndGradient(net, x, labels, order, l1, l2, scratch);
        w[k] = saved;
        let num = (cost2 - cost1) / (2 * epsilon);
        // The seed's cost carries l1/2 * sum|w| but its gradient l1 * sign(w), the derivative of
        // l1 * sum|w|: the updates minimise the latter. Check backpropagation against that
        // objective, adding the other half of the L1 term's difference (bias weights are not
        // regularised).
        if (l1 !== 0 && k % stride !== 0) num += ((l1 / 2) * (Math.abs(saved + epsilon) - Math.abs(saved - epsilon))) / (2 * epsilon);
        const g = grads[l][k];
        diff2 += (num - g) ** 2;
        num2 += num * num;
        grad2 += g * g;
      }
    }
    const denom = Math.sqrt(num2) + Math.sqrt(grad2);
    return denom === 0 ? 0 : Math.sqrt(diff2) / denom;
  }

  /** The model as a JSON document (see `lib/format.ts` for the versioned format). */
  toJSON(): ModelJSON {
    const { l1, l2, epochs, eta, alpha, decreaseConst, etaSchedule, shuffle, minibatches, randomState } = this.options;
    return {
      format: FORMAT_TAG,
      version: FORMAT_VERSION,
      dtype: this.options.dtype,
      layers: Array.from(this.#net.sizes),
      options: { l1, l2, epochs, eta, alpha, decreaseConst, etaSchedule, shuffle, minibatches, randomState },
      weights: this.weights.map((w) => ({ rows: w.rows, cols: w.cols, data: Array.from(w.data) })),
      training: { ...this.#training, savedAt: new Date().toISOString() },
    };
  }

  /**
   * Rebuilds a model from {@link NeuralNetMLP.toJSON}'s document (an object or JSON text).
   * Everything is checked before use; problems throw an `ERR_INVALID_FILE` error naming the field.
   */
  static fromJSON(json: unknown, options?: LoadOptions): NeuralNetMLP {
    const run = checkLoadOptions(options);
    const decoded = typeof json === 'string' ? parseModel(json, '<json>') : decodeModel(json, '<json>');
    return NeuralNetMLP.#fromDecoded(decoded, run, '<json>');
  }

  static #fromDecoded(decoded: DecodedModel, run: LoadOptions, source: string): NeuralNetMLP {
    const { layers, options: stored, dtype, weights, training } = decoded;
    let model: NeuralNetMLP;
    try {
      // The constructor's weight draw only sizes the buffers; the file's weights replace it.
      model = new NeuralNetMLP({
        ...stored,
        nFeatures: layers[0],
        nHidden: layers.slice(1, -1),
        nOutput: layers[layers.length - 1],
        dtype,
        ...run,
      });
    } catch (error) {
      // `run` was checked already, so an argument error here comes from the file's contents.
      const code = (error as { code?: string }).code;
      if (code === 'ERR_OUT_OF_RANGE' || code === 'ERR_INVALID_ARG_TYPE' || code === 'ERR_INVALID_ARG_VALUE') {
        throw invalidFile(source, (error as Error).message);
      }
      throw error;
    }
    model.#net.weights.forEach((w, l) => w.set(weights[l]));
    model.#predictor = null;
    model.#training = training;
    return model;
  }

  /**
   * The model in the compact binary form: safetensors, readable by Python's `safetensors`
   * (tensors `w1`, `w2`, ...; configuration in `__metadata__`). {@link NeuralNetMLP.load} reads it back.
   */
  toSafetensors(): Uint8Array {
    return encodeSafetensors(this.toJSON());
  }

  /**
   * The bytes `save(path)` writes: safetensors for a `.safetensors` path, JSON otherwise. A model
   * that `load` could not read back (beyond {@link MODEL_LIMITS}) is refused before anything is
   * written, rather than saved to a file no one can open.
   */
  #encodeFor(path: string): string | Uint8Array {
    const sizes = this.#net.sizes;
    let weights = 0;
    for (let l = 0; l + 1 < sizes.length; l++) weights += sizes[l + 1] * (sizes[l] + 1);
    if (weights > MODEL_LIMITS.maxWeights) {
      throw outOfRange('the model to save', `at most ${MODEL_LIMITS.maxWeights} weights (MODEL_LIMITS.maxWeights, the most load reads back)`, weights);
    }
    // A model whose training diverged holds NaN or infinite weights, which no model file can.
    const layers = this.#stableWeights();
    for (let l = 0; l < layers.length; l++) {
      const bad = this.#backend.firstNonFinite(layers[l]);
      if (bad >= 0) {
        const cols = sizes[l] + 1;
        throw outOfRange(
          `the weights to save (layer ${l + 1}, row ${Math.floor(bad / cols)}, column ${bad % cols})`,
          'a finite number (training diverged; a smaller eta or alpha may help)',
          layers[l][bad],
        );
      }
    }
    let encoded: string | Uint8Array;
    try {
      encoded = path.endsWith('.safetensors') ? this.toSafetensors() : stringifyModel(this.toJSON());
    } catch (error) {
      // V8's own "Invalid string length": the JSON text would be longer than a string can be.
      if (!(error instanceof RangeError)) throw error;
      throw Object.assign(invalidValue(`The model is too large to write as JSON (${weights} weights); save it to a .safetensors path instead`), { cause: error });
    }
    const bytes = typeof encoded === 'string' ? Buffer.byteLength(encoded) : encoded.byteLength;
    const [limitName, limit] = typeof encoded === 'string' ? ['maxJsonBytes', MODEL_LIMITS.maxJsonBytes] : ['maxFileBytes', MODEL_LIMITS.maxFileBytes];
    if (bytes > limit) {
      throw invalidValue(
        `The model's file would be ${bytes} bytes, more than load reads back (MODEL_LIMITS.${limitName}, ${limit})` +
          (path.endsWith('.safetensors') ? '' : '; a .safetensors file holds the same model in fewer bytes'),
      );
    }
    return encoded;
  }

  /** Writes the model to `path`: safetensors when it ends in `.safetensors`, JSON (`toJSON`) otherwise. */
  async save(path: string): Promise<void> {
    await writeFile(pathArg(path), this.#encodeFor(pathArg(path)));
  }

  /** Synchronous {@link NeuralNetMLP.save}. */
  saveSync(path: string): void {
    writeFileSync(pathArg(path), this.#encodeFor(pathArg(path)));
  }

  /**
   * Reads a model written by {@link NeuralNetMLP.save} (JSON or safetensors, told apart by content)
   * from a path or from the file's bytes. Everything is checked before use; a bad file throws an
   * error with code `ERR_INVALID_FILE` naming the file and the field.
   */
  static async load(source: string | Uint8Array, options?: LoadOptions): Promise<NeuralNetMLP> {
    if (source instanceof Uint8Array) return NeuralNetMLP.#fromBytes(source, '<buffer>', options);
    return NeuralNetMLP.#fromBytes(await readModelFile(pathArg(source, 'source', 'a non-empty file path string or the file\'s bytes (Uint8Array)')), source, options);
  }

  /** Synchronous {@link NeuralNetMLP.load}. */
  static loadSync(source: string | Uint8Array, options?: LoadOptions): NeuralNetMLP {
    if (source instanceof Uint8Array) return NeuralNetMLP.#fromBytes(source, '<buffer>', options);
    return NeuralNetMLP.#fromBytes(readModelFileSync(pathArg(source, 'source', 'a non-empty file path string or the file\'s bytes (Uint8Array)')), source, options);
  }

  static #fromBytes(bytes: Uint8Array, name: string, options?: LoadOptions): NeuralNetMLP {
    const run = checkLoadOptions(options);
    return NeuralNetMLP.#fromDecoded(decodeModelFile(bytes, name), run, name);
  }

  /** The analytic gradient (backpropagation, regularisation included) and cost over all rows, in float64. */
  gradient(X: MatrixLike, y: LabelsLike): { cost: number; grads: WeightMatrix[] } {
    const x = this.#matrix(X);
    const labels = toLabels('y', y, x.rows, this.options.nOutput);
    const net: NetState = {
      sizes: this.#net.sizes,
      weights: this.#stableWeights().map((w) => Float64Array.from(w)),
      prevDelta: [],
    };
    const order = new Int32Array(x.rows);
    for (let i = 0; i < order.length; i++) order[i] = i;
    const grads = net.weights.map((w) => new Float64Array(w.length));
    const cost = this.#backend.costAndGradient(net, x, labels, order, this.options.l1, this.options.l2, grads);
    return {
      cost,
      grads: grads.map((g, l) => ({ data: g, rows: net.sizes[l + 1], cols: net.sizes[l] + 1 })),
    };
  }
}

/** Options for loading a saved model: how to run it here (the file says what it is). */
export interface LoadOptions {
  backend?: BackendChoice;
  threads?: number;
}

function checkLoadOptions(value: unknown): LoadOptions {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw invalidType('options', 'an object { backend?, threads? }', value);
  checkKnownKeys('options', value, ['backend', 'threads']);
  if (value.backend !== undefined) oneOf('options.backend', value.backend, ['auto', 'native', 'js'] as const);
  if (value.threads !== undefined) integerIn('options.threads', value.threads, 1, 1024);
  return value as LoadOptions;
}

function pathArg(value: unknown, name = 'path', expected = 'a non-empty file path string'): string {
  if (typeof value !== 'string' || value.length === 0) throw invalidType(name, expected, value);
  return value;
}

/**
 * The seed's MLPGradientCheck for any model: the relative error between numerical (central
 * differences with `epsilon`) and backpropagated gradients. Below 1e-7 is right; above 1e-4 is a problem.
 */
export function gradientCheck(model: NeuralNetMLP, X: MatrixLike, y: LabelsLike, options?: { epsilon?: number }): number {
  if (!(model instanceof NeuralNetMLP)) throw invalidType('model', 'a NeuralNetMLP', model);
  return model.gradientCheck(X, y, options);
}

/**
 * The kernel interface: the few whole-minibatch operations a backend implements.
 * The pure-TypeScript backend and the C++ addon both implement exactly this, so the model code
 * above them is one piece of code and the tests can run every check on every backend.
 */

import type { RandomState } from '../random.js';

/** Floating-point precision of weights and arithmetic. */
export type Dtype = 'float64' | 'float32';
/** A typed array of weights in the model's dtype. */
export type FloatArray = Float64Array | Float32Array;
/** Element types accepted for input features. `Uint8Array` pixels are used as they are (0..255). */
export type InputArray = Float64Array | Float32Array | Uint8Array;

/** A dense row-major matrix: `data[r * cols + c]`. */
export interface Matrix<T = InputArray> {
  data: T;
  rows: number;
  cols: number;
}

/**
 * The network as the kernels see it.
 * Layer `l` maps `sizes[l]` inputs to `sizes[l+1]` units; its weights are a row-major
 * `sizes[l+1] x (sizes[l] + 1)` matrix with the bias in column 0 (the seed's layout).
 */
export interface NetState {
  /** `[nFeatures, ...hidden, nOutput]`. */
  sizes: Int32Array;
  /** One weight matrix per layer. */
  weights: FloatArray[];
  /** The previous update of each layer (momentum), same shapes as `weights`. */
  prevDelta: FloatArray[];
}

/** What one epoch of minibatch steps needs besides the network and the data. */
export interface EpochParams {
  /** Learning rate for this epoch. */
  eta: number;
  /** Momentum factor. */
  alpha: number;
  l1: number;
  l2: number;
  /** The epoch's samples are `order` split into this many consecutive parts like `np.array_split`. */
  minibatches: number;
  /** Worker threads the backend may use (the result must not depend on it). */
  threads: number;
}

/** Names of the available backends. */
export type BackendName = 'native' | 'js';

/** One training run's state on a backend: the prepared data set and reusable buffers. */
export interface EpochRunner {
  /**
   * Runs one epoch: for each minibatch of `order` (array_split into `params.minibatches` parts),
   * writes the cost before the step into `costs[costOffset + b]`, then updates weights and momentum.
   * Checks `stop[0]` before each minibatch and returns early when it is non-zero.
   * @returns the number of minibatches completed.
   */
  epoch(net: NetState, order: Int32Array, params: EpochParams, costs: Float64Array, costOffset: number, stop?: Int32Array): number;
  /**
   * The same epoch off the main thread, when the backend can (the native one: an N-API async
   * worker). Until the promise settles nothing may read or write `net`, `order` or `costs`;
   * `stop` may be set (with `Atomics.store`) to end it after the current minibatch.
   */
  epochAsync?(
    net: NetState,
    order: Int32Array,
    params: EpochParams,
    costs: Float64Array,
    costOffset: number,
    stop?: Int32Array,
  ): Promise<number>;
  /** Releases what the run holds (threads, workers). Called once, when the run ends. */
  dispose?(): void;
}

/** Synchronous prediction with a fixed copy of a network's weights (made once, used many times). */
export interface Predictor {
  /** Writes the output layer's pre-activations (`rows x nOutput`) of every row of `x` into `out`. */
  logits(x: Matrix, out: FloatArray): void;
  /** Writes each row's class (the argmax of its logits; ties go to the lower label) into `out` (`x.rows` elements). */
  labels(x: Matrix, out: Int32Array): void;
}

/** The kernels. All sizes have been validated by the caller; native code re-checks them anyway. */
export interface Backend {
  readonly name: BackendName;
  /**
   * The index of the first NaN or ±Infinity in `data`, or, when `maxMagnitude` (a finite number)
   * is given, of the first element not within ±maxMagnitude; -1 when there is none (the
   * validation of float input, which reads every element: the native backend's is vectorised).
   */
  firstNonFinite(data: Float64Array | Float32Array, maxMagnitude?: number): number;
  /** A private copy of `data`, of the same type (for asynchronous work, see NeuralNetMLP's use). */
  copyInput<A extends InputArray>(data: A): A;
  /** Prepares a training run over `x` and `labels` (kept by reference: they must not change during the run). */
  createRunner(net: NetState, x: Matrix, labels: Int32Array, threads: number): EpochRunner;
  /** Writes the output layer's pre-activations (`rows x nOutput`) of every row of `x` into `out`. */
  outputLogits(net: NetState, x: Matrix, out: FloatArray, threads: number): void;
  /**
   * A predictor for the network's weights as they are now (the native one copies and packs them
   * once, so each call costs only the arithmetic). Make a new one when the weights change.
   */
  createPredictor(net: NetState, threads: number): Predictor;
  /**
   * The same off the main thread. The caller passes arrays that nothing else touches until the
   * promise settles (the model passes a copy of its weights).
   */
  outputLogitsAsync(net: NetState, x: Matrix, out: FloatArray, threads: number): Promise<void>;
  /**
   * Shuffles `order` in place as `rng.shuffle(order)` does (numpy's legacy `RandomState.shuffle`:
   * `order` becomes `order[permutation(n)]`, the seed's per-epoch shuffle), leaving `rng` in the
   * same state. The native backend does it in C++: it runs between epochs while every training
   * thread waits.
   */
  shuffleOrder(rng: RandomState, order: Int32Array): void;
  /**
   * Cost and gradient over the samples `order` (one minibatch), without updating anything.
   * `grads` has the shapes of `net.weights`; returns the cost (the seed's `_get_cost`).
   */
  costAndGradient(
    net: NetState,
    x: Matrix,
    labels: Int32Array,
    order: Int32Array,
    l1: number,
    l2: number,
    grads: FloatArray[],
  ): number;
}

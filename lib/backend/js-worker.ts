/**
 * The TypeScript backend's worker thread: runs epochs and predictions off the main thread so a
 * server's event loop keeps answering. It holds the training data it was started with and
 * receives the network's weights with every request (they come back updated).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { jsBackend } from './js.js';
import type { EpochParams, EpochRunner, FloatArray, Matrix, NetState } from './types.js';

/** Data a training worker is started with (a prediction worker gets none: `x` is null). */
export interface WorkerSetup {
  sizes: Int32Array;
  x: Matrix | null;
  labels: Int32Array | null;
  stop: Int32Array;
}

/** A request to the worker. */
export type WorkerRequest =
  | { kind: 'epoch'; weights: FloatArray[]; prevDelta: FloatArray[]; order: Int32Array; params: EpochParams; minibatches: number }
  | { kind: 'logits'; sizes: Int32Array; weights: FloatArray[]; x: Matrix; outLength: number; threads: number };

/** The worker's answer. */
export type WorkerReply =
  | { kind: 'epoch'; done: number; costs: Float64Array; weights: FloatArray[]; prevDelta: FloatArray[] }
  | { kind: 'logits'; out: FloatArray }
  | { kind: 'error'; message: string; name: string };

const setup = workerData as WorkerSetup;
let runner: EpochRunner | undefined;

parentPort?.on('message', (request: WorkerRequest) => {
  try {
    if (request.kind === 'epoch') {
      const net: NetState = { sizes: setup.sizes, weights: request.weights, prevDelta: request.prevDelta };
      if (!setup.x || !setup.labels) throw new Error('This worker holds no training data');
      runner ??= jsBackend.createRunner(net, setup.x, setup.labels, 1);
      const costs = new Float64Array(request.minibatches);
      const done = runner.epoch(net, request.order, request.params, costs, 0, setup.stop);
      const reply: WorkerReply = { kind: 'epoch', done, costs, weights: net.weights, prevDelta: net.prevDelta };
      parentPort!.postMessage(reply, [...net.weights, ...net.prevDelta, costs].map((a) => a.buffer as ArrayBuffer));
    } else {
      const net: NetState = { sizes: request.sizes, weights: request.weights, prevDelta: [] };
      const Ctor = request.weights[0] instanceof Float32Array ? Float32Array : Float64Array;
      const out = new Ctor(request.outLength);
      jsBackend.outputLogits(net, request.x, out, request.threads);
      const reply: WorkerReply = { kind: 'logits', out };
      parentPort!.postMessage(reply, [out.buffer as ArrayBuffer]);
    }
  } catch (error) {
    const e = error as Error;
    parentPort!.postMessage({ kind: 'error', message: e.message, name: e.name } satisfies WorkerReply);
  }
});

/**
 * Loads the C++ addon and wraps it as a {@link Backend}. The loader tries each candidate
 * location, remembers why each one failed, and reports all of it in one message.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend, EpochParams, FloatArray, InputArray, Matrix, NetState, Predictor } from './types.js';

/** The addon's training-run object (see native/binding/addon.cpp, TrainerWrap). */
interface NativeTrainer {
  readonly sparse: boolean;
  epoch(net: NetState, order: Int32Array, params: EpochParams, costs: Float64Array, costOffset: number, stop?: Int32Array): number;
  epochAsync(
    net: NetState,
    order: Int32Array,
    params: EpochParams,
    costs: Float64Array,
    costOffset: number,
    stop?: Int32Array,
  ): Promise<number>;
  dispose(): void;
}

/** The addon's kernel paths, from the most portable to the widest vectors. */
export type IsaName = 'generic' | 'avx2' | 'avx512';

/** The functions the addon exports (see native/binding/addon.cpp). */
interface NativeAddon {
  abiVersion: number;
  /** The instruction set the kernels use: 'avx512', 'avx2' or 'generic' (NEURALNET_MLP_ISA may lower it). */
  isa: IsaName;
  /** The best instruction set this build can use on this CPU. */
  bestIsa: IsaName;
  Trainer: new (net: NetState, x: Matrix, labels: Int32Array, threads: number) => NativeTrainer;
  Predictor: new (net: Pick<NetState, 'sizes' | 'weights'>, threads: number) => Predictor;
  outputLogits(net: Pick<NetState, 'sizes' | 'weights'>, x: Matrix, out: FloatArray, threads: number): void;
  outputLogitsAsync(net: Pick<NetState, 'sizes' | 'weights'>, x: Matrix, out: FloatArray, threads: number): Promise<void>;
  firstNonFinite(data: Float64Array | Float32Array, maxMagnitude?: number): number;
  /** A copy of the typed array's bytes in an ArrayBuffer of the addon's (huge pages where granted). */
  copyInput(data: InputArray): ArrayBuffer;
  /** RandomState.shuffle(order) with the state from RandomState.getState(), advanced in place. */
  shuffleOrder(state: Uint32Array, order: Int32Array): void;
  costAndGradient(
    net: Pick<NetState, 'sizes' | 'weights'>,
    x: Matrix,
    labels: Int32Array,
    order: Int32Array,
    l1: number,
    l2: number,
    grads: FloatArray[],
  ): number;
}

/** Must equal the addon's `abiVersion` (bumped whenever its exports change). */
const ABI_VERSION = 7;
const ADDON_NAME = 'neuralnet_mlp.node';
/** Environment variable naming an explicit path to the addon file. */
export const ADDON_PATH_ENV = 'NEURALNET_MLP_ADDON';

/** The package's root folder (this file is lib/backend/*.ts or dist/backend/*.js). */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function candidates(): string[] {
  const explicit = process.env[ADDON_PATH_ENV];
  if (explicit) return [resolve(explicit)];
  return [
    join(packageRoot, 'build', 'Release', ADDON_NAME),
    join(packageRoot, 'build-cmake', 'Release', ADDON_NAME),
    join(packageRoot, 'build', 'Debug', ADDON_NAME),
  ];
}

export interface LoadResult {
  addon?: NativeAddon;
  path?: string;
  failures: string[];
}

let loaded: LoadResult | undefined;

/** Loads the addon once; later calls return the same result. */
export function loadAddon(): LoadResult {
  if (loaded) return loaded;
  const failures: string[] = [];
  for (const path of candidates()) {
    if (!existsSync(path)) {
      failures.push(`${path}: not found`);
      continue;
    }
    try {
      // process.dlopen, not require: the path (which an environment variable may name) is only
      // ever loaded as a native addon, never run as JavaScript.
      const module = { exports: {} as NativeAddon };
      process.dlopen(module, path);
      const addon = module.exports;
      if (addon.abiVersion !== ABI_VERSION) {
        failures.push(`${path}: built from another version of this package (rebuild it)`);
        continue;
      }
      loaded = { addon, path, failures };
      return loaded;
    } catch (error) {
      failures.push(`${path}: ${(error as Error).message}`);
    }
  }
  loaded = { failures };
  return loaded;
}

/** Why the addon is unavailable, with what to do about it. */
export function addonUnavailableMessage(failures: string[]): string {
  return [
    'The native addon of neuralnet-mlp is not available:',
    ...failures.map((f) => `  - ${f}`),
    'Build it with `npm rebuild neuralnet-mlp` (needs a C++17 compiler, make and python3),',
    `or point ${ADDON_PATH_ENV} at a built ${ADDON_NAME}. npm 12 and later run a dependency's`,
    'install script only when the project allows it: `npm install-scripts approve neuralnet-mlp` first.',
  ].join('\n');
}

/** Wraps the loaded addon as a backend. */
export function nativeBackendFrom(addon: NativeAddon): Backend {
  return {
    name: 'native',
    firstNonFinite: (data, maxMagnitude) => addon.firstNonFinite(data, maxMagnitude),
    copyInput: <A extends InputArray>(data: A): A => {
      const bytes = addon.copyInput(data);
      const copy = data instanceof Float64Array ? new Float64Array(bytes) : data instanceof Float32Array ? new Float32Array(bytes) : new Uint8Array(bytes);
      return copy as A;
    },
    shuffleOrder: (rng, order) => {
      const state = rng.getState();
      addon.shuffleOrder(state, order);
      rng.setState(state);
    },
    createRunner: (net, x, labels, threads) => new addon.Trainer(net, x, labels, threads),
    outputLogits: (net, x, out, threads) => addon.outputLogits(net, x, out, threads),
    createPredictor: (net, threads) => new addon.Predictor(net, threads),
    outputLogitsAsync: (net, x, out, threads) => addon.outputLogitsAsync(net, x, out, threads),
    costAndGradient: (net, x, labels, order, l1, l2, grads) => addon.costAndGradient(net, x, labels, order, l1, l2, grads),
  };
}

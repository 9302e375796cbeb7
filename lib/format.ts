/**
 * The model file format (`model.json`), version 1:
 *
 * ```json
 * {
 *   "format": "neuralnet-mlp",
 *   "version": 1,
 *   "dtype": "float64",
 *   "layers": [784, 50, 10],
 *   "options": { "l1": 0, "l2": 0.1, "epochs": 1000, "eta": 0.001, ... },
 *   "weights": [ { "rows": 50, "cols": 785, "data": [ ... ] }, { "rows": 10, "cols": 51, "data": [ ... ] } ],
 *   "training": { "samples": 60000, "epochs": 1000, "finalCost": 123.4, "savedAt": "2026-01-01T00:00:00.000Z" }
 * }
 * ```
 *
 * `layers` is `[nFeatures, ...nHidden, nOutput]`; weight matrix `l` has `rows = layers[l+1]`
 * units and `cols = layers[l] + 1` inputs with the bias in column 0 (the seed's `w1`, `w2`).
 * Numbers are written in JavaScript's shortest round-trip form, so float64 weights read back
 * bit-identical. `training` is informational and may be absent.
 *
 * Reading checks everything before use: the format tag and version, every key (unknown keys are
 * an error), layer sizes, matrix shapes against data lengths, finite numbers, and the limits
 * {@link MODEL_LIMITS}. Nothing is evaluated and no key is merged into an existing object.
 */
import { describe, invalidFile } from './errors.js';
import type { Dtype } from './backend/types.js';
import { isPlainObject } from './validate.js';

export const FORMAT_TAG = 'neuralnet-mlp';
export const FORMAT_VERSION = 1;

/** Limits on what a model file may declare. */
export const MODEL_LIMITS = Object.freeze({
  /** Largest model file read, in bytes. */
  maxFileBytes: 512 * 1024 * 1024,
  /** Most layers (weight matrices). */
  maxLayers: 64,
  /** Most units in one layer (and most input features). */
  maxUnits: 2 ** 24,
  /** Most weights in all layers together. */
  maxWeights: 2 ** 26,
});

/** Options stored in a model file (the hyperparameters it was trained with). */
export interface StoredOptions {
  l1: number;
  l2: number;
  epochs: number;
  eta: number;
  alpha: number;
  decreaseConst: number;
  etaSchedule: 'compounding' | 'inverse-time';
  shuffle: boolean;
  minibatches: number;
  randomState: number | null;
}

/** Facts about the training run, for people reading the file. */
export interface TrainingInfo {
  samples?: number;
  epochs?: number;
  finalCost?: number;
  savedAt?: string;
}

/** The JSON document of a saved model. */
export interface ModelJSON {
  format: typeof FORMAT_TAG;
  version: typeof FORMAT_VERSION;
  dtype: Dtype;
  layers: number[];
  options: StoredOptions;
  weights: { rows: number; cols: number; data: number[] }[];
  training?: TrainingInfo;
}

/** A model file, checked and decoded. */
export interface DecodedModel {
  dtype: Dtype;
  layers: number[];
  options: StoredOptions;
  weights: Float64Array[];
  training: TrainingInfo;
}

const TOP_KEYS = ['format', 'version', 'dtype', 'layers', 'options', 'weights', 'training'];
const OPTION_KEYS = ['l1', 'l2', 'epochs', 'eta', 'alpha', 'decreaseConst', 'etaSchedule', 'shuffle', 'minibatches', 'randomState'];
const TRAINING_KEYS = ['samples', 'epochs', 'finalCost', 'savedAt'];

/** Checks a parsed model document; every problem is an `ERR_INVALID_FILE` error naming `source` and the field. */
export function decodeModel(doc: unknown, source: string): DecodedModel {
  const fail = (field: string, problem: string): never => {
    throw invalidFile(source, `${field}: ${problem}`);
  };
  const keys = (obj: Record<string, unknown>, field: string, allowed: string[]) => {
    for (const k of Object.keys(obj)) if (!allowed.includes(k)) fail(field, `unknown key ${JSON.stringify(k)}`);
  };
  const int = (v: unknown, field: string, min: number, max: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(field, `expected an integer in [${min}, ${max}], found ${describe(v)}`);
    return v as number;
  };
  const num = (v: unknown, field: string, min = -Infinity): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) fail(field, `expected a finite number >= ${min}, found ${describe(v)}`);
    return v as number;
  };

  if (!isPlainObject(doc)) fail('document', `expected a JSON object, found ${describe(doc)}`);
  const d = doc as Record<string, unknown>;
  keys(d, 'document', TOP_KEYS);
  if (d.format !== FORMAT_TAG) fail('format', `expected ${JSON.stringify(FORMAT_TAG)}, found ${describe(d.format)}`);
  if (d.version !== FORMAT_VERSION) fail('version', `expected ${FORMAT_VERSION} (this version of neuralnet-mlp reads version ${FORMAT_VERSION}), found ${describe(d.version)}`);
  if (d.dtype !== 'float64' && d.dtype !== 'float32') fail('dtype', `expected "float64" or "float32", found ${describe(d.dtype)}`);

  if (!Array.isArray(d.layers) || d.layers.length < 2 || d.layers.length > MODEL_LIMITS.maxLayers + 1) {
    fail('layers', `expected an array of 2 to ${MODEL_LIMITS.maxLayers + 1} layer sizes, found ${describe(d.layers)}`);
  }
  const layers = (d.layers as unknown[]).map((s, i) => int(s, `layers[${i}]`, 1, MODEL_LIMITS.maxUnits));
  let total = 0;
  for (let l = 0; l + 1 < layers.length; l++) total += layers[l + 1] * (layers[l] + 1);
  if (total > MODEL_LIMITS.maxWeights) fail('layers', `the model would have ${total} weights, more than the limit of ${MODEL_LIMITS.maxWeights}`);

  if (!isPlainObject(d.options)) fail('options', `expected an object, found ${describe(d.options)}`);
  const o = d.options as Record<string, unknown>;
  keys(o, 'options', OPTION_KEYS);
  for (const k of OPTION_KEYS) if (!(k in o)) fail(`options.${k}`, 'missing');
  if (o.etaSchedule !== 'compounding' && o.etaSchedule !== 'inverse-time') fail('options.etaSchedule', `expected "compounding" or "inverse-time", found ${describe(o.etaSchedule)}`);
  if (typeof o.shuffle !== 'boolean') fail('options.shuffle', `expected a boolean, found ${describe(o.shuffle)}`);
  const options: StoredOptions = {
    l1: num(o.l1, 'options.l1', 0),
    l2: num(o.l2, 'options.l2', 0),
    epochs: int(o.epochs, 'options.epochs', 1, Number.MAX_SAFE_INTEGER),
    eta: num(o.eta, 'options.eta', 0),
    alpha: num(o.alpha, 'options.alpha', 0),
    decreaseConst: num(o.decreaseConst, 'options.decreaseConst', 0),
    etaSchedule: o.etaSchedule as StoredOptions['etaSchedule'],
    shuffle: o.shuffle as boolean,
    minibatches: int(o.minibatches, 'options.minibatches', 1, Number.MAX_SAFE_INTEGER),
    randomState: o.randomState === null ? null : int(o.randomState, 'options.randomState', 0, 2 ** 32 - 1),
  };
  if (options.eta === 0) fail('options.eta', 'expected a number > 0, found 0');

  if (!Array.isArray(d.weights) || d.weights.length !== layers.length - 1) {
    fail('weights', `expected an array of ${layers.length - 1} matrices (one per layer), found ${describe(d.weights)}`);
  }
  const weights = (d.weights as unknown[]).map((m, l) => {
    const field = `weights[${l}]`;
    if (!isPlainObject(m)) fail(field, `expected an object { rows, cols, data }, found ${describe(m)}`);
    const mat = m as Record<string, unknown>;
    keys(mat, field, ['rows', 'cols', 'data']);
    const rows = layers[l + 1];
    const cols = layers[l] + 1;
    if (mat.rows !== rows || mat.cols !== cols) {
      fail(field, `expected a ${rows} x ${cols} matrix for layers ${layers[l]} -> ${layers[l + 1]}, found ${describe(mat.rows)} x ${describe(mat.cols)}`);
    }
    if (!Array.isArray(mat.data) || mat.data.length !== rows * cols) {
      fail(`${field}.data`, `expected an array of ${rows * cols} numbers, found ${describe(mat.data)}`);
    }
    const src = mat.data as unknown[];
    const out = new Float64Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${field}.data[${i}]`, `expected a finite number, found ${describe(v)}`);
      out[i] = v as number;
    }
    return out;
  });

  const training: TrainingInfo = {};
  if (d.training !== undefined) {
    if (!isPlainObject(d.training)) fail('training', `expected an object, found ${describe(d.training)}`);
    const t = d.training as Record<string, unknown>;
    keys(t, 'training', TRAINING_KEYS);
    if (t.samples !== undefined) training.samples = int(t.samples, 'training.samples', 0, Number.MAX_SAFE_INTEGER);
    if (t.epochs !== undefined) training.epochs = int(t.epochs, 'training.epochs', 0, Number.MAX_SAFE_INTEGER);
    if (t.finalCost !== undefined) training.finalCost = num(t.finalCost, 'training.finalCost');
    if (t.savedAt !== undefined) {
      if (typeof t.savedAt !== 'string' || t.savedAt.length > 64) fail('training.savedAt', `expected a date string, found ${describe(t.savedAt)}`);
      training.savedAt = t.savedAt as string;
    }
  }
  return { dtype: d.dtype as Dtype, layers, options, weights, training };
}

/** Parses JSON text or bytes of a model file and checks it. */
export function parseModel(input: string | Uint8Array, source: string): DecodedModel {
  if (input.length > MODEL_LIMITS.maxFileBytes) throw invalidFile(source, `larger than the limit of ${MODEL_LIMITS.maxFileBytes} bytes`);
  const text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: false }).decode(input);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw invalidFile(source, `not valid JSON (${(error as Error).message})`);
  }
  return decodeModel(doc, source);
}

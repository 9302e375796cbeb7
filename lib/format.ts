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
import { readLimited, readLimitedSync, type ReadLimit } from './readlimited.js';
import type { Dtype } from './backend/types.js';
import { FLOAT32_MAX, isPlainObject } from './validate.js';

export const FORMAT_TAG = 'neuralnet-mlp';
export const FORMAT_VERSION = 1;

/**
 * Limits on what a model file may be and declare. `load` checks a file's size before reading it
 * (and never reads more than the limit), and `save` refuses a model whose file would be over it.
 */
export const MODEL_LIMITS = Object.freeze({
  /** Largest model file read, in bytes (a safetensors file; see `maxJsonBytes` for JSON). */
  maxFileBytes: 512 * 1024 * 1024,
  /**
   * Largest JSON model read, in bytes (or characters, for JSON given as a string): 200 MiB.
   * Lower than `maxFileBytes` because JSON text of that size could declare an array longer than
   * JavaScript engines can build (V8 stops the whole process at about 2^27 elements); 200 MiB of
   * text holds at most 2^26.6 elements, as each takes at least 2 bytes. A model over this size
   * can be saved as safetensors, which also takes fewer bytes.
   */
  maxJsonBytes: 200 * 1024 * 1024,
  /** Most layers (weight matrices). */
  maxLayers: 64,
  /** Most units in one layer (and most input features). */
  maxUnits: 2 ** 24,
  /** Most weights in all layers together. */
  maxWeights: 2 ** 26,
});

/** The training hyperparameters: what a model file stores (the model's options extend these). */
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

  if (!Array.isArray(d.layers) || d.layers.length < 3 || d.layers.length > MODEL_LIMITS.maxLayers + 1) {
    fail('layers', `expected an array of 3 to ${MODEL_LIMITS.maxLayers + 1} layer sizes (inputs, hidden layers, outputs), found ${describe(d.layers)}`);
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
    // A float32 model's weights must fit float32: a larger value would load as Infinity.
    const limit = d.dtype === 'float32' ? FLOAT32_MAX : Number.MAX_VALUE;
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (typeof v !== 'number' || !(Math.abs(v) <= limit)) {
        fail(`${field}.data[${i}]`, `expected a finite ${d.dtype} number, found ${describe(v)}`);
      }
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

/**
 * The JSON text of a model document. Like `JSON.stringify`, except that negative zero weights are
 * written as `-0` (which `JSON.parse` reads back as -0), so float64 weights round-trip bit for bit.
 */
export function stringifyModel(doc: ModelJSON): string {
  const { weights, ...rest } = doc;
  const number = (v: number) => (Object.is(v, -0) ? '-0' : String(v));
  const matrices = weights.map((m) => `{"rows":${m.rows},"cols":${m.cols},"data":[${m.data.map(number).join(',')}]}`);
  return `${JSON.stringify(rest).slice(0, -1)},"weights":[${matrices.join(',')}]}`;
}

/**
 * Most arrays and objects, and most strings, in the JSON of a model. A model has at most
 * 2 * 64 + 5 arrays and objects and about 220 strings (keys included); the bounds keep one
 * JSON.parse from building tens of millions of them from a small file (`[{},{},...]` in
 * 200 MiB makes 70 million objects, more memory than the engine allows), which would end the
 * process rather than throw.
 */
const MAX_JSON_CONTAINERS = 1024;
const MAX_JSON_STRINGS = 4096;

/** Counts the arrays, objects and strings of JSON text without parsing it; throws past the bounds. */
function checkJsonCounts(input: string | Uint8Array, source: string): void {
  const at: (i: number) => number = typeof input === 'string' ? (i) => input.charCodeAt(i) : (i) => input[i];
  const n = input.length;
  let containers = 0;
  let strings = 0;
  for (let i = 0; i < n; i++) {
    const c = at(i);
    if (c === 0x22 /* " */) {
      if (++strings > MAX_JSON_STRINGS) throw invalidFile(source, `document: more than ${MAX_JSON_STRINGS} strings, more than a model holds`);
      // Skip to the closing quote (UTF-8 continuation bytes are never '"' or '\\').
      for (i++; i < n; i++) {
        const d = at(i);
        if (d === 0x5c /* backslash */) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++containers > MAX_JSON_CONTAINERS) throw invalidFile(source, `document: more than ${MAX_JSON_CONTAINERS} arrays and objects, more than a model holds`);
    }
  }
}

function jsonTooLarge(size: string): string {
  return `a JSON model of ${size}, larger than the limit of ${MODEL_LIMITS.maxJsonBytes} bytes for JSON (MODEL_LIMITS.maxJsonBytes); a model this large can be saved as .safetensors`;
}

/**
 * Parses JSON text or bytes of a model file and checks it. Text over `MODEL_LIMITS.maxJsonBytes`,
 * or with more arrays, objects or strings than any model has, is rejected before it is parsed.
 */
export function parseModel(input: string | Uint8Array, source: string): DecodedModel {
  // Checked before parsing: a longer text could hold an array too long for JSON.parse to build.
  if (input.length > MODEL_LIMITS.maxJsonBytes) {
    throw invalidFile(source, jsonTooLarge(`${input.length} ${typeof input === 'string' ? 'characters' : 'bytes'}`));
  }
  checkJsonCounts(input, source);
  const text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: false }).decode(input);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw invalidFile(source, `not valid JSON (${(error as Error).message})`);
  }
  return decodeModel(doc, source);
}

/**
 * The compact binary form: safetensors (an 8-byte little-endian header length, a JSON header,
 * then the tensors as little-endian bytes), so Python's `safetensors` can read the weights.
 * Tensors are named `w1`, `w2`, ... (the seed's names) with shape `[units, inputs + 1]`;
 * `__metadata__` holds the format tag, version, dtype, layers, options and training info as
 * strings (safetensors metadata values are strings).
 */
export function encodeSafetensors(doc: ModelJSON): Uint8Array {
  const elem = doc.dtype === 'float32' ? 4 : 8;
  const header: Record<string, unknown> = {
    __metadata__: {
      format: FORMAT_TAG,
      version: String(FORMAT_VERSION),
      dtype: doc.dtype,
      layers: JSON.stringify(doc.layers),
      options: JSON.stringify(doc.options),
      training: JSON.stringify(doc.training ?? {}),
    },
  };
  let offset = 0;
  doc.weights.forEach((w, l) => {
    const bytes = w.data.length * elem;
    header[`w${l + 1}`] = { dtype: elem === 4 ? 'F32' : 'F64', shape: [w.rows, w.cols], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  });
  let headerText = JSON.stringify(header);
  // Pad the header with spaces so the tensor data starts 8-byte aligned (as the reference writer does).
  headerText += ' '.repeat((8 - ((8 + Buffer.byteLength(headerText)) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const w of doc.weights) {
    for (const v of w.data) {
      if (elem === 4) view.setFloat32(pos, v, true);
      else view.setFloat64(pos, v, true);
      pos += elem;
    }
  }
  return out;
}

/** Largest safetensors header read, in bytes. */
const MAX_HEADER_BYTES = 1024 * 1024;

/** Reads and checks a safetensors model file written by {@link encodeSafetensors}. */
export function decodeSafetensors(bytes: Uint8Array, source: string): DecodedModel {
  const fail = (problem: string): never => {
    throw invalidFile(source, problem);
  };
  if (bytes.length > MODEL_LIMITS.maxFileBytes) fail(`larger than the limit of ${MODEL_LIMITS.maxFileBytes} bytes`);
  const neither = 'not a model file: neither a JSON model (which starts with "{") nor a safetensors file';
  if (bytes.length < 8) fail(`${neither} (${bytes.length} bytes, too short for a safetensors header)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    // Text, or anything else that is not a model: its first 8 bytes make no plausible length.
    fail(`${neither} (its first 8 bytes give a safetensors header length of ${headerLength}, more than the limit of ${MAX_HEADER_BYTES} bytes)`);
  }
  if (headerLength > BigInt(bytes.length - 8)) {
    fail(`truncated: the safetensors header length ${headerLength} exceeds the file (${bytes.length} bytes)`);
  }
  const n = Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (error) {
    return fail(`the safetensors header is not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(header)) return fail('the safetensors header is not a JSON object');
  const meta = header.__metadata__;
  if (!isPlainObject(meta)) return fail('__metadata__: missing (not a model written by neuralnet-mlp)');
  for (const [k, v] of Object.entries(meta)) if (typeof v !== 'string') fail(`__metadata__.${k}: expected a string, found ${describe(v)}`);
  const metaKeys = ['format', 'version', 'dtype', 'layers', 'options', 'training'];
  for (const k of Object.keys(meta)) if (!metaKeys.includes(k)) fail(`__metadata__: unknown key ${JSON.stringify(k)}`);
  const parse = (k: string): unknown => {
    if (typeof meta[k] !== 'string') fail(`__metadata__.${k}: missing`);
    try {
      return JSON.parse(meta[k] as string);
    } catch {
      return fail(`__metadata__.${k}: not valid JSON`);
    }
  };
  if (meta.format !== FORMAT_TAG) fail(`__metadata__.format: expected ${JSON.stringify(FORMAT_TAG)}, found ${describe(meta.format)}`);
  if (meta.version !== String(FORMAT_VERSION)) fail(`__metadata__.version: expected "${FORMAT_VERSION}", found ${describe(meta.version)}`);
  const dtype = meta.dtype;
  if (dtype !== 'float64' && dtype !== 'float32') return fail(`__metadata__.dtype: expected "float64" or "float32", found ${describe(dtype)}`);
  const layers = parse('layers');
  // Layer sizes are checked by decodeModel below; here only what is needed to read the tensors.
  if (!Array.isArray(layers) || layers.length < 2 || layers.length > MODEL_LIMITS.maxLayers + 1 || !layers.every((s) => Number.isInteger(s) && s >= 1 && s <= MODEL_LIMITS.maxUnits)) {
    fail(`__metadata__.layers: expected 2 to ${MODEL_LIMITS.maxLayers + 1} layer sizes, found ${describe(layers)}`);
  }
  const sizes = layers as number[];
  const elem = dtype === 'float32' ? 4 : 8;
  const tensorNames = sizes.slice(1).map((_, l) => `w${l + 1}`);
  for (const k of Object.keys(header)) if (k !== '__metadata__' && !tensorNames.includes(k)) fail(`unexpected tensor ${JSON.stringify(k)}`);
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const ranges: [number, number][] = [];
  const weights = tensorNames.map((name, l) => {
    const t = header[name];
    if (!isPlainObject(t)) return fail(`tensor ${name}: missing`);
    for (const k of Object.keys(t)) if (!['dtype', 'shape', 'data_offsets'].includes(k)) fail(`tensor ${name}: unknown key ${JSON.stringify(k)}`);
    const rows = sizes[l + 1];
    const cols = sizes[l] + 1;
    if (t.dtype !== (elem === 4 ? 'F32' : 'F64')) fail(`tensor ${name}: expected dtype ${elem === 4 ? 'F32' : 'F64'}, found ${describe(t.dtype)}`);
    if (!Array.isArray(t.shape) || t.shape.length !== 2 || t.shape[0] !== rows || t.shape[1] !== cols) {
      fail(`tensor ${name}: expected shape [${rows}, ${cols}], found ${describe(t.shape)}`);
    }
    const off = t.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((v) => Number.isSafeInteger(v) && v >= 0)) {
      return fail(`tensor ${name}: data_offsets must be two non-negative integers`);
    }
    const [begin, end] = off as [number, number];
    if (end - begin !== rows * cols * elem || end > dataLength) {
      fail(`tensor ${name}: data_offsets [${begin}, ${end}] do not hold ${rows * cols} values within ${dataLength} bytes of data`);
    }
    ranges.push([begin, end]);
    const out = new Float64Array(rows * cols);
    for (let i = 0; i < out.length; i++) {
      const pos = dataStart + begin + i * elem;
      out[i] = elem === 4 ? view.getFloat32(pos, true) : view.getFloat64(pos, true);
    }
    return out;
  });
  // The tensors must tile the data region exactly: no gaps, overlaps or trailing bytes.
  ranges.sort((a, b) => a[0] - b[0]);
  let expected = 0;
  for (const [begin, end] of ranges) {
    if (begin !== expected) fail('tensor data overlaps or leaves gaps');
    expected = end;
  }
  if (expected !== dataLength) fail(`${dataLength - expected} bytes after the last tensor`);
  return decodeModel(
    {
      format: FORMAT_TAG,
      version: FORMAT_VERSION,
      dtype,
      layers: sizes,
      options: parse('options'),
      weights: weights.map((w, l) => ({ rows: sizes[l + 1], cols: sizes[l] + 1, data: Array.from(w) })),
      training: parse('training'),
    },
    source,
  );
}

/** The first byte of `bytes` that is not JSON whitespace or a UTF-8 byte order mark (undefined if none). */
function firstContentByte(bytes: Uint8Array): number | undefined {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09 || bytes[i] === 0xef || bytes[i] === 0xbb || bytes[i] === 0xbf)) i++;
  return bytes[i];
}

/** Decodes a model file of either form: JSON text or safetensors bytes. */
export function decodeModelFile(bytes: Uint8Array, source: string): DecodedModel {
  return firstContentByte(bytes) === 0x7b /* { */ ? parseModel(bytes, source) : decodeSafetensors(bytes, source);
}

/** How a model file is read: see {@link readModelFileSync}. */
function modelReadLimit(path: string): ReadLimit {
  return {
    maxBytes: MODEL_LIMITS.maxFileBytes,
    // JSON (or a file of only whitespace so far) is held to the JSON limit; see MODEL_LIMITS.maxJsonBytes.
    refine: (head) => {
      const first = firstContentByte(head);
      return first === undefined || first === 0x7b ? MODEL_LIMITS.maxJsonBytes : MODEL_LIMITS.maxFileBytes;
    },
    tooLarge: (size, limit) => {
      const found = size === undefined ? `more than ${limit} bytes (it grew while being read)` : `${size} bytes`;
      return invalidFile(path, limit < MODEL_LIMITS.maxFileBytes ? jsonTooLarge(found) : `${found}, larger than the limit of ${limit} bytes (MODEL_LIMITS.maxFileBytes)`);
    },
  };
}

/**
 * The bytes of the model file at `path`. Only a regular file is read, its size is checked against
 * {@link MODEL_LIMITS} (`maxJsonBytes` for JSON, `maxFileBytes` otherwise) before it is read, and
 * no more than the limit is ever read. Throws `ERR_INVALID_FILE` naming the path for anything
 * else (a directory, FIFO or device, or a file over the limit), and the file system's error
 * (e.g. `ENOENT`) when the path cannot be read.
 */
export function readModelFileSync(path: string): Uint8Array {
  return readLimitedSync(path, modelReadLimit(path));
}

/** Asynchronous {@link readModelFileSync}. */
export function readModelFile(path: string): Promise<Uint8Array> {
  return readLimited(path, modelReadLimit(path));
}

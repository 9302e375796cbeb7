/**
 * Data for the robustness, concurrency and server tests: MNIST subsets (copied out of the file
 * buffer, so nothing keeps or clones the whole 47 MB training file) and a tiny synthetic set.
 */
import { loadMnistSync, mnistDataDir, type MnistSet } from '../../lib/index.js';
import { Prng } from './robust-prng.js';

export interface Subset {
  X: { data: Uint8Array; rows: number; cols: number };
  y: Uint8Array;
}

const cache = new Map<string, MnistSet>();

function mnist(kind: 'train' | 't10k'): MnistSet {
  let set = cache.get(kind);
  if (!set) {
    set = loadMnistSync(mnistDataDir(), kind);
    cache.set(kind, set);
  }
  return set;
}

/** Rows [start, start + rows) of an MNIST split, copied into arrays of their own. */
export function mnistSubset(kind: 'train' | 't10k', rows: number, start = 0): Subset {
  const set = mnist(kind);
  const cols = set.images.cols;
  const end = Math.min(set.images.rows, start + rows);
  return {
    X: { data: set.images.data.slice(start * cols, end * cols), rows: end - start, cols },
    y: set.labels.slice(start, end),
  };
}

/** `rows` samples of `cols` features in [0, 1) and labels in [0, classes), from a seed. */
export function syntheticSet(seed: number, rows: number, cols: number, classes: number): { X: { data: Float64Array; rows: number; cols: number }; y: Int32Array } {
  const rng = new Prng(seed);
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = rng.next();
  const y = new Int32Array(rows);
  for (let i = 0; i < rows; i++) y[i] = rng.int(classes);
  return { X: { data, rows, cols }, y };
}

/** Rows [start, end) of a row-major matrix, copied. */
export function rowsOf<T extends Uint8Array | Float64Array | Float32Array>(
  X: { data: T; rows: number; cols: number },
  start: number,
  end: number,
): { data: T; rows: number; cols: number } {
  return { data: X.data.slice(start * X.cols, end * X.cols) as T, rows: end - start, cols: X.cols };
}

/** True when two typed arrays hold the same bits (NaN payloads and -0 included). */
export function sameBits(a: ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }, b: typeof a): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** The index and values of the first difference between two arrays, for failure messages. */
export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): string {
  if (a.length !== b.length) return `lengths ${a.length} and ${b.length}`;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return `index ${i}: ${a[i]} vs ${b[i]}`;
  return 'none';
}

/**
 * Validation at the API boundary: every public entry point checks its arguments here, once,
 * and throws `TypeError`/`RangeError` naming the argument, what was expected and what came.
 */
import { describe, invalidType, invalidValue, outOfRange } from './errors.js';
import type { InputArray, Matrix } from './backend/types.js';

/** Accepted forms of a feature matrix: a row-major `{ data, rows, cols }` or an array of rows. */
export type MatrixLike = Matrix<InputArray> | ArrayLike<ArrayLike<number>>;
/** Accepted forms of a label vector: integers `0..nOutput-1`. */
export type LabelsLike = Uint8Array | Int32Array | readonly number[];

/** Largest number of elements in one array we accept (typed arrays are limited to this anyway). */
export const MAX_ELEMENTS = 2 ** 32 - 1;
/** The most rows a matrix of samples may have. */
export const MAX_ROWS = 2 ** 31 - 1;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Throws a TypeError for option names that are not in `known` (catches misspellings). */
export function checkKnownKeys(name: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      const error = new TypeError(`Unknown option ${name}.${key}: expected one of ${known.join(', ')}`);
      throw Object.assign(error, { code: 'ERR_INVALID_ARG_TYPE' as const });
    }
  }
}

/** An integer in [min, max]. */
export function integerIn(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw invalidType(name, 'an integer', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw outOfRange(name, `an integer ${range}`, value);
  }
  return value;
}

/** A finite number >= min (and > min when `exclusive`). */
export function finiteAtLeast(name: string, value: unknown, min: number, exclusive = false): number {
  if (typeof value !== 'number') throw invalidType(name, 'a number', value);
  if (!Number.isFinite(value) || value < min || (exclusive && value === min)) {
    throw outOfRange(name, `a finite number ${exclusive ? '>' : '>='} ${min}`, value);
  }
  return value;
}

export function booleanArg(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidType(name, 'a boolean', value);
  return value;
}

export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    const expected = allowed.map((a) => `'${a}'`).join(', ');
    if (typeof value !== 'string') throw invalidType(name, `one of ${expected}`, value);
    throw outOfRange(name, `one of ${expected}`, value);
  }
  return value as T;
}

/** The largest finite float32, 3.4028234663852886e38. */
export const FLOAT32_MAX = (2 - 2 ** -23) * 2 ** 127;

/**
 * The index of the first NaN or ±Infinity in `data`, or, when `maxMagnitude` (a finite number) is
 * given, of the first element that is not within ±maxMagnitude; -1 when there is none (the
 * TypeScript backend's scan; the native one is vectorised).
 */
export function firstNonFinite(data: Float64Array | Float32Array, maxMagnitude?: number): number {
  if (maxMagnitude !== undefined) {
    for (let i = 0; i < data.length; i++) if (!(Math.abs(data[i]) <= maxMagnitude)) return i;
    return -1;
  }
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // v - v is NaN exactly for NaN and +-Infinity: one comparison per element.
    if (v - v !== 0) return i;
  }
  return -1;
}

/** A bound on the magnitude of a matrix's elements, and how an error states it. */
export interface MagnitudeBound {
  max: number;
  expected: string;
}

/**
 * Checks a feature matrix and returns it as `{ data, rows, cols }`. Typed data is used as it is
 * (never copied or changed); an array of rows is copied once into a `Float64Array`. `scan` finds
 * a non-finite element of float data, or one beyond `bound` when that is given, in one pass (the
 * model passes its backend's).
 */
export function toMatrix(
  name: string,
  value: unknown,
  expectedCols?: number,
  scan: (data: Float64Array | Float32Array, maxMagnitude?: number) => number = firstNonFinite,
  bound?: MagnitudeBound,
): Matrix<InputArray> {
  let matrix: Matrix<InputArray>;
  if (Array.isArray(value)) {
    matrix = rowsToMatrix(name, value, bound);
  } else if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value) && 'data' in value) {
    const { data, rows, cols } = value as { data: unknown; rows: unknown; cols: unknown };
    if (!(data instanceof Float64Array || data instanceof Float32Array || data instanceof Uint8Array)) {
      throw invalidType(`${name}.data`, 'a Float64Array, Float32Array or Uint8Array', data);
    }
    // Rows are counted in 32-bit signed integers by the addon, and each one's outputs need room.
    integerIn(`${name}.rows`, rows, 1, MAX_ROWS);
    integerIn(`${name}.cols`, cols, 1, MAX_ELEMENTS);
    const r = rows as number;
    const c = cols as number;
    if (data.length !== r * c) {
      throw invalidValue(`Expected ${name}.data to have ${name}.rows * ${name}.cols = ${r * c} elements but it has ${data.length}`);
    }
    if (!(data instanceof Uint8Array)) {
      const bad = scan(data, bound?.max);
      if (bad >= 0) {
        const v = data[bad];
        throw outOfRange(`${name} (row ${Math.floor(bad / c)}, column ${bad % c})`, bound && Number.isFinite(v) ? bound.expected : 'a finite number', v);
      }
    }
    matrix = { data, rows: r, cols: c };
  } else {
    throw invalidType(name, 'a matrix { data, rows, cols } or an array of rows (number[][])', value);
  }
  if (expectedCols !== undefined && matrix.cols !== expectedCols) {
    throw invalidValue(`Expected ${name} to have ${expectedCols} columns (nFeatures) but it has ${matrix.cols}`);
  }
  return matrix;
}

/** An array or typed array (a DataView has no elements to index). */
function isRow(value: unknown): boolean {
  return Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView));
}

function rowsToMatrix(name: string, rowsIn: readonly unknown[], bound?: MagnitudeBound): Matrix<Float64Array> {
  const rows = rowsIn.length;
  if (rows === 0) throw outOfRange(name, 'at least one row', rowsIn);
  if (rows > MAX_ROWS) throw outOfRange(`${name}.length`, `at most ${MAX_ROWS} rows`, rows);
  const first = rowsIn[0];
  if (!isRow(first)) throw invalidType(`${name}[0]`, 'an array of numbers', first);
  const cols = (first as ArrayLike<number>).length;
  if (cols === 0) throw outOfRange(`${name}[0]`, 'at least one column', first);
  const data = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const row = rowsIn[r];
    if (!isRow(row)) throw invalidType(`${name}[${r}]`, 'an array of numbers', row);
    const arr = row as ArrayLike<unknown>;
    if (arr.length !== cols) {
      throw invalidValue(`Expected every row of ${name} to have ${cols} columns but ${name}[${r}] has ${arr.length}`);
    }
    for (let c = 0; c < cols; c++) {
      const v = arr[c];
      if (typeof v !== 'number') throw invalidType(`${name}[${r}][${c}]`, 'a number', v);
      if (!Number.isFinite(v)) throw outOfRange(`${name}[${r}][${c}]`, 'a finite number', v);
      if (bound && Math.abs(v) > bound.max) throw outOfRange(`${name}[${r}][${c}]`, bound.expected, v);
      data[r * cols + c] = v;
    }
  }
  return { data, rows, cols };
}

/** Checks labels (one per row, integers in [0, nOutput)) and returns them as a new Int32Array. */
export function toLabels(name: string, value: unknown, rows: number, nOutput: number): Int32Array {
  if (!(value instanceof Uint8Array || value instanceof Int32Array || Array.isArray(value))) {
    throw invalidType(name, 'a Uint8Array, Int32Array or number[] of class labels', value);
  }
  if (value.length !== rows) {
    throw invalidValue(`Expected ${name} to have one label per row of X (${rows}) but it has ${value.length}`);
  }
  const labels = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const v: unknown = value[i];
    if (typeof v !== 'number') throw invalidType(`${name}[${i}]`, 'an integer class label', v);
    if (!Number.isInteger(v) || v < 0 || v >= nOutput) {
      throw outOfRange(`${name}[${i}]`, `an integer class label in [0, ${nOutput - 1}] (nOutput is ${nOutput})`, v);
    }
    labels[i] = v;
  }
  return labels;
}

export { describe };

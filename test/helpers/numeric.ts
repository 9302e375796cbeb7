/**
 * Numeric comparison helpers and deterministic test data (from the package's own RandomState,
 * which test/random.test.ts checks against numpy).
 */
import { expect } from 'vitest';
import { RandomState } from '../../lib/index.js';

type Numbers = ArrayLike<number>;

/** Every element identical (Object.is: distinguishes -0 and +0, NaN equals NaN); names the first difference. */
export function expectSameBits(actual: Numbers, expected: Numbers, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      expect.fail(`${what}: element ${i} is ${actual[i]} but expected exactly ${expected[i]}`);
    }
  }
}

/** Largest elementwise |a - e| / max(|e|, floor) (floor > 0 turns tiny values into an absolute check). */
export function maxRelErr(actual: Numbers, expected: Numbers, floor = 0): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const err = Math.abs(actual[i] - e) / Math.max(Math.abs(e), floor);
    if (!(err <= worst)) worst = err; // NaN propagates as the worst
  }
  return worst;
}

/** ||a - b|| / ||b|| (Euclidean norms over all elements). */
export function normRelErr(actual: Numbers, expected: Numbers): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    diff += (actual[i] - expected[i]) ** 2;
    norm += expected[i] ** 2;
  }
  return norm === 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
}

/**
 * Every element within `rel` relative or `abs` absolute (whichever is looser) of the expected
 * value; the failure message names the worst element.
 */
export function expectClose(actual: Numbers, expected: Numbers, tol: { rel: number; abs?: number }, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const abs = tol.abs ?? 0;
  let worstIndex = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const allowed = Math.max(tol.rel * Math.abs(e), abs);
    const err = Math.abs(a - e);
    if (!(err <= allowed)) {
      const excess = Number.isFinite(err) ? err / Math.max(allowed, Number.MIN_VALUE) : Infinity;
      if (worstIndex < 0 || excess > worstExcess) {
        worstIndex = i;
        worstExcess = excess;
      }
    }
  }
  if (worstIndex >= 0) {
    const a = actual[worstIndex];
    const e = expected[worstIndex];
    expect.fail(
      `${what}: element ${worstIndex} is ${a}, expected ${e} (relative error ${Math.abs(a - e) / Math.abs(e)}, ` +
        `allowed rel ${tol.rel}${tol.abs ? ` or abs ${tol.abs}` : ''})`,
    );
  }
}

/** The logistic function, written out. */
export function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** A data set with features uniform in [0, 1) and labels uniform in 0..nOutput-1, from a seed. */
export function randomDataset(
  seed: number,
  rows: number,
  cols: number,
  nOutput: number,
): { X: { data: Float64Array; rows: number; cols: number }; y: Int32Array } {
  const rng = new RandomState(seed);
  const data = new Float64Array(rows * cols);
  rng.uniform(0, 1, data);
  const y = new Int32Array(rows);
  for (let i = 0; i < rows; i++) y[i] = rng.interval(nOutput - 1);
  return { X: { data, rows, cols }, y };
}

/** Row-major flat copy of an array of rows. */
export function flatten(rows: readonly (readonly number[])[]): number[] {
  return rows.flatMap((r) => r);
}

/** An error thrown by `fn` (fails the test when nothing is thrown). */
export function thrown(fn: () => unknown): Error & { code?: string; path?: string } {
  try {
    fn();
  } catch (error) {
    return error as Error & { code?: string };
  }
  return expect.fail('expected a throw but nothing was thrown');
}

/** The rejection reason of a promise (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; path?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  return expect.fail('expected a rejection but the promise resolved');
}

/** Checks an error's class (exactly TypeError or RangeError, not the other), code and that the message names `name`. */
export function expectArgError(
  error: unknown,
  kind: typeof TypeError | typeof RangeError,
  code: string | undefined,
  name: string | RegExp,
): void {
  expect(error).toBeInstanceOf(kind);
  const other = kind === TypeError ? RangeError : TypeError;
  expect(error).not.toBeInstanceOf(other);
  const e = error as Error & { code?: string };
  if (code !== undefined) expect(e.code, e.message).toBe(code);
  if (typeof name === 'string') expect(e.message).toContain(name);
  else expect(e.message).toMatch(name);
}

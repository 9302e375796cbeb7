/**
 * One error shape for the whole package: which argument, what was expected, what arrived.
 * Every error carries a stable `code` so callers can branch without parsing messages.
 */

/**
 * The `code` of this package's errors:
 * - `ERR_INVALID_ARG_TYPE` (`TypeError`), `ERR_OUT_OF_RANGE` and `ERR_INVALID_ARG_VALUE`
 *   (`RangeError`): a bad argument, named in the message;
 * - `ERR_INVALID_FILE`: a model or IDX file that cannot be read as one (the error has `path`), or
 *   no MNIST copy where `mnistDataDir()` looks;
 * - `ERR_NATIVE_UNAVAILABLE`: `backend: 'native'` where the addon does not load (or a backend's
 *   worker script is missing from the build);
 * - `ERR_BUSY`: a model asked to fit while it is fitting;
 * - `ABORT_ERR`: a fit stopped by its `signal` (name `AbortError`). When the signal's reason is
 *   itself an `AbortError` (as `AbortController.abort()` gives), the fit rejects with that reason
 *   instead, a `DOMException` whose `code` is the number 20.
 */
export type ErrorCode =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_INVALID_FILE'
  | 'ERR_NATIVE_UNAVAILABLE'
  | 'ERR_BUSY'
  | 'ABORT_ERR';

/** A short, human description of any value, for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'boolean' || typeof value === 'symbol') return String(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) {
    const len = 'length' in value ? (value as unknown as { length: number }).length : value.byteLength;
    return `a ${value.constructor.name} of length ${len}`;
  }
  const name = (value as object).constructor?.name;
  return name && name !== 'Object' ? `an instance of ${name}` : 'an object';
}

function withCode<E extends Error>(error: E, code: ErrorCode): E & { code: ErrorCode } {
  return Object.assign(error, { code });
}

/** `TypeError`: `name` should have been `expected` but was `actual`. */
export function invalidType(name: string, expected: string, actual: unknown): TypeError & { code: ErrorCode } {
  return withCode(new TypeError(`Expected ${expected} for ${name} but received ${describe(actual)}`), 'ERR_INVALID_ARG_TYPE');
}

/** `RangeError`: `name` has the right type but a value out of range. */
export function outOfRange(name: string, expected: string, actual: unknown): RangeError & { code: ErrorCode } {
  return withCode(new RangeError(`Expected ${expected} for ${name} but received ${describe(actual)}`), 'ERR_OUT_OF_RANGE');
}

/** `RangeError` whose message is free-form (e.g. shapes that disagree with each other). */
export function invalidValue(message: string): RangeError & { code: ErrorCode } {
  return withCode(new RangeError(message), 'ERR_INVALID_ARG_VALUE');
}

/** An error about a file's contents, naming the file. */
export function invalidFile(path: string, problem: string): Error & { code: ErrorCode; path: string } {
  return Object.assign(new Error(`${path}: ${problem}`), { code: 'ERR_INVALID_FILE' as ErrorCode, path });
}

/** An error with a code and no argument to blame (state errors, unavailable features). */
export function stateError(code: ErrorCode, message: string): Error & { code: ErrorCode } {
  return withCode(new Error(message), code);
}

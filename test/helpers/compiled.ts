/**
 * Running the compiled package (dist/) in a child Node process with a timeout, so that a loader
 * which hangs on its input fails a test instead of hanging the suite, and checking what the
 * child reports.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export interface ChildResult {
  status: number | null;
  stdout: string;
  stderr: string;
  signal: NodeJS.Signals | null;
}

/**
 * Runs `code` (an ES module using `lib`, the compiled package) in a child Node process with a
 * timeout. dist/ is rebuilt first when a lib/ source is newer than its compiled file.
 */
export function runCompiled(code: string, timeout = 10_000): ChildResult {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const stale = readdirSync(join(root, 'lib'), { recursive: true, encoding: 'utf8' }).some((file) => {
    if (!file.endsWith('.ts') || file.endsWith('.d.ts')) return false;
    const compiled = join(root, 'dist', file.replace(/\.ts$/, '.js'));
    return !existsSync(compiled) || statSync(compiled).mtimeMs < statSync(join(root, 'lib', file)).mtimeMs;
  });
  if (stale) spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'ignore' });
  const lib = JSON.stringify(new URL('../../dist/index.js', import.meta.url).href);
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', `const lib = await import(${lib});\n${code}`], { encoding: 'utf8', timeout });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr, signal: child.signal };
}

/** Child code printing the child's peak RSS in MiB as `rss <n>` (the last line of the *InChild scripts). */
export const printPeakRss = `console.log('rss ' + Math.round(process.resourceUsage().maxRSS / 1024));`;

let idleRss: number | undefined;
/** The peak RSS, in MiB, of a child that only imports the package. */
function idleChildRssMiB(): number {
  if (idleRss === undefined) {
    const idle = runCompiled(printPeakRss, 60_000);
    idleRss = Number(idle.stdout.trim().split(' ')[1]);
    expect(Number.isFinite(idleRss), `an idle child's RSS: ${idle.stdout} ${idle.stderr}`).toBe(true);
  }
  return idleRss;
}

/**
 * Checks a child that printed two `<code> <message>` lines (an asynchronous and a synchronous
 * loader's rejection) and then `rss <MiB>`: both ERR_INVALID_FILE matching `message`, and, with
 * `maxRssMiB`, a peak RSS at most that far above an idle child's (measured the same way: the
 * sanitizer build's children start several hundred MiB higher, and what matters is what the
 * read added).
 */
export function expectBothRejectedInChild(result: ChildResult, message: RegExp, maxRssMiB?: number): void {
  expect(result.signal, `the child was killed (timed out?): ${result.stderr}`).toBeNull();
  expect(result.status, result.stderr).toBe(0);
  const lines = result.stdout.trim().split('\n');
  expect(lines.length, result.stdout).toBe(3);
  for (const line of lines.slice(0, 2)) {
    expect(line).toMatch(/^ERR_INVALID_FILE /);
    expect(line).toMatch(message);
  }
  if (maxRssMiB !== undefined) expect(Number(lines[2].split(' ')[1]) - idleChildRssMiB(), 'peak RSS in MiB above an idle child').toBeLessThan(maxRssMiB);
}

/**
 * Makes a FIFO at `path` for the loaders' "not a regular file" tests. Returns null when it exists,
 * or why it could not be made (the caller prints that and skips).
 */
export function makeFifo(path: string): string | null {
  const made = spawnSync('mkfifo', [path], { encoding: 'utf8' });
  return made.error || made.status !== 0 ? `mkfifo is unavailable (${made.error?.message ?? made.stderr})` : null;
}

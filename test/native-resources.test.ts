/**
 * Native resources: `threads: 1000` on a machine with a few cores starts no more threads than the
 * CPUs the process may use (more would only take turns, and a thousand stacks would exhaust a
 * memory limit: a CI run of the earlier pool, which started threads until the system refused
 * one, ended in SIGSEGV when the rest of the process found the address space full). Under a
 * virtual-memory limit, predictions, fits and many concurrent asynchronous predictions with
 * `threads: 1000` give exactly the 1-thread results, each checked in a child process so that a
 * crash fails the test instead of killing the runner.
 *
 * What the pool does when the system does refuse threads is checked without Node, where nothing
 * else allocates meanwhile: native/tests/pool_check.cpp, compiled and run here.
 *
 * Linux only (ulimit -v, /proc, fork). The children run the compiled package: run `npm run build`
 * first. NEURALNET_MLP_ADDON, if set, names the addon the children load (e.g. an older build, to
 * see these tests fail on it). CXX names the C++ compiler (default: c++).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nativeAvailable } from '../lib/index.js';

/** Virtual-memory limit for the children, in KiB: Node starts in well under 1 GiB, 1000 threads' 8 MiB stacks need 8 GB. */
const LIMIT_KB = 2_000_000;
const STACK_KB = 8192;
const THREADS = 1000;
const distIndex = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/** Runs `code` (an ES module) in a child Node with the limits set; env NNMLP_DIST is the package's URL. */
function runLimited(code: string, args: string[] = []) {
  const script = `ulimit -s ${STACK_KB} && ulimit -v ${LIMIT_KB} && exec "$0" --input-type=module -e "$1" -- "$@"`;
  return spawnSync('bash', ['-c', script, process.execPath, code, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, NNMLP_DIST: pathToFileURL(distIndex).href },
  });
}

/** Why the scenario cannot be made deterministic here, or undefined when it can. */
function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux (needs ulimit -v and /proc)';
  if (!nativeAvailable()) return 'the native addon is not available';
  if (!existsSync(distIndex)) return 'dist/index.js is missing (run `npm run build`)';
  // The limit must be honoured: the child reads its own address-space limit back.
  const probe = runLimited(
    `import { readFileSync } from 'node:fs';
     console.log(/Max address space\\s+(\\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))[1]);`,
  );
  if (probe.status !== 0) return `a child under ulimit -v ${LIMIT_KB} did not start: ${probe.stderr || probe.error}`;
  if (probe.stdout.trim() !== String(LIMIT_KB * 1024)) return `ulimit -v is not honoured (the child reports ${probe.stdout.trim()})`;
  return undefined;
}

const reason = skipReason();
if (reason) console.warn(`native-resources tests skipped: ${reason}`);

/** The child: one scenario with threads: 1000 against the same with threads: 1; prints JSON. */
const child = `
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
const { NeuralNetMLP } = await import(process.env.NNMLP_DIST);
const scenario = process.argv[process.argv.length - 1];
const threadsNow = () => Number(/Threads:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
const hash = (a) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
const rows = 2048, cols = 784;
// On a SharedArrayBuffer, so that the asynchronous calls read it in place instead of each taking a
// private copy: under this memory limit the scenarios are about threads, not about copies.
const data = new Uint8Array(new SharedArrayBuffer(rows * cols));
let s = 12345;
for (let i = 0; i < data.length; i++) {
  s = (Math.imul(s, 1103515245) + 12345) >>> 0;
  data[i] = s >>> 24 < 80 ? (s >>> 16) & 255 : 0;
}
const X = { data, rows, cols };
const y = Int32Array.from({ length: rows }, (_, i) => i % 10);
const options = { nOutput: 10, nFeatures: cols, nHidden: 30, epochs: 2, minibatches: 4, randomState: 1, backend: 'native' };
const one = new NeuralNetMLP({ ...options, threads: 1 });
const many = new NeuralNetMLP({ ...options, threads: ${THREADS} });
const out = { scenario, threadsBefore: threadsNow() };
if (scenario === 'predict') {
  out.expected = hash(one.predictProba(X).data);
  out.actual = hash(many.predictProba(X).data);
  out.labelsSame = hash(many.predict(X)) === hash(one.predict(X));
  out.threadsWithPool = threadsNow(); // the model's predictor keeps its pool
} else if (scenario === 'fit') {
  await one.fit(X, y);
  await many.fit(X, y);
  out.expected = one.weights.map((w) => hash(w.data)).join() + hash(one.costs);
  out.actual = many.weights.map((w) => hash(w.data)).join() + hash(many.costs);
  out.labelsSame = hash(many.predict(X)) === hash(one.predict(X));
} else {
  const expected = hash(one.predict(X));
  // Several calls run at once, each with its own pool and buffers: should the limit leave a call no
  // room, that must be a clean rejection (no crash), and every answer right.
  const settled = await Promise.allSettled(Array.from({ length: 20 }, () => many.predictAsync(X)));
  const answered = settled.filter((r) => r.status === 'fulfilled');
  const refused = settled.filter((r) => r.status === 'rejected');
  out.answered = answered.length;
  out.refusedCleanly = refused.every((r) => r.reason instanceof Error && /Out of memory/.test(r.reason.message));
  out.expected = expected;
  out.actual = answered.every((r) => hash(r.value) === expected) ? expected : 'some differ';
  out.labelsSame = true;
}
console.log(JSON.stringify(out));
`;

function runScenario(scenario: 'predict' | 'fit' | 'predictAsync') {
  const result = runLimited(child, [scenario]);
  const output = `exit status ${result.status}, signal ${result.signal}\n${result.stdout}\n${result.stderr}`;
  expect(result.status, output).toBe(0);
  const reply = JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as {
    expected: string;
    actual: string;
    labelsSame: boolean;
    threadsBefore: number;
    threadsWithPool?: number;
  };
  expect(reply.actual, output).toBe(reply.expected);
  expect(reply.labelsSame, output).toBe(true);
  return reply;
}

describe.skipIf(reason !== undefined)(`native addon with threads: ${THREADS} under ulimit -v ${LIMIT_KB}`, () => {
  it('predict and predictProba start at most the CPUs\' worth of threads and equal the 1-thread results', () => {
    const reply = runScenario('predict');
    const started = (reply.threadsWithPool ?? 0) - reply.threadsBefore;
    expect(started, JSON.stringify(reply)).toBeLessThanOrEqual(cpus().length - 1);
    console.log(`[native-resources] a ${THREADS}-thread pool runs with ${started} threads besides the caller (${cpus().length} CPUs)`);
  });

  it('fit gives the same weights and costs as with 1 thread', () => {
    runScenario('fit');
  });

  it('20 concurrent predictAsync calls give the 1-thread labels, or a clean out-of-memory error, never a crash', () => {
    const reply = runScenario('predictAsync') as unknown as { answered: number; refusedCleanly: boolean };
    expect(reply.refusedCleanly, JSON.stringify(reply)).toBe(true);
    console.log(`[native-resources] ${reply.answered} of 20 concurrent predictAsync calls answered under the limit, the rest refused cleanly`);
  });
});

/** The C++ compiler for the standalone pool check, or why there is none. */
const cxx = process.env.CXX || 'c++';
// The check is a plain program: not the sanitizer runtimes that `npm run test:sanitizers` preloads
// into Node (their allocator does not run under an address-space limit).
const { LD_PRELOAD: _preload, ...plainEnv } = process.env;
function poolCheckSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux (the check uses setrlimit, fork and /proc)';
  const probe = spawnSync(cxx, ['--version'], { encoding: 'utf8', env: plainEnv });
  if (probe.error || probe.status !== 0) return `no C++ compiler (${cxx} --version: ${probe.error?.message ?? probe.stderr.trim()})`;
  return undefined;
}
const poolReason = poolCheckSkipReason();
if (poolReason) console.warn(`native-resources: the thread-pool check is skipped: ${poolReason}`);

describe.skipIf(poolReason !== undefined)('the thread pool when the system refuses threads (native/tests/pool_check.cpp)', () => {
  it('runs every task with the threads it gets, down to none, and later pools start no more than it kept', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nnmlp-pool-check-'));
    try {
      const program = join(dir, 'pool_check');
      const source = fileURLToPath(new URL('../native/tests/pool_check.cpp', import.meta.url));
      const build = spawnSync(cxx, ['-std=c++17', '-O2', '-Wall', '-Wextra', '-pthread', source, '-o', program], {
        encoding: 'utf8',
        env: plainEnv,
      });
      expect(build.status, `${cxx} failed:\n${build.stderr}`).toBe(0);
      const run = spawnSync(program, [], { encoding: 'utf8', timeout: 60_000, env: plainEnv });
      const output = `exit status ${run.status}, signal ${run.signal}\n${run.stdout}\n${run.stderr}`;
      console.log(run.stdout.trim().replace(/^/gm, '[pool check] '));
      expect(run.status, output).toBe(0);
      expect(run.stdout, output).toContain('pool check: all passed');
      expect(run.stdout, output).not.toContain('FAILED');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

/**
 * Native resources: when the system refuses threads (here: a virtual-memory limit, under which a
 * 1000-thread pool cannot get its stacks), the addon runs with the threads it got and gives
 * exactly the 1-thread results, instead of aborting the process (std::system_error escaping the
 * thread pool's constructor). Predictions, fits and many concurrent asynchronous predictions are
 * each checked in a child process, so that a crash fails the test instead of killing the runner.
 *
 * Linux only (ulimit -v, /proc). The children run the compiled package: run `npm run build` first.
 * NEURALNET_MLP_ADDON, if set, names the addon the children load (e.g. an older build, to see
 * these tests fail on it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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
  // Several calls run at once, each with its own pool, so under the limit a call may also find no
  // room for its buffers: that must be a clean rejection (no crash), and every answer right.
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
  it('predict and predictProba run with the threads the system grants and equal the 1-thread results', () => {
    const reply = runScenario('predict');
    // The limit did refuse threads (else this test would prove nothing), and the pool kept some.
    const started = (reply.threadsWithPool ?? 0) - reply.threadsBefore;
    expect(started, JSON.stringify(reply)).toBeLessThan(THREADS - 1);
    console.log(`[native-resources] a ${THREADS}-thread pool under the limit runs with ${started} threads besides the caller`);
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

#!/usr/bin/env node
// The test suite against an addon built with AddressSanitizer and UndefinedBehaviorSanitizer
// (gcc or clang, Linux): any out-of-bounds access, use after free or undefined behaviour in the
// native code stops the run with a report. The addon goes to build-sanitizers/ (cmake-js with
// CMakeLists.txt's MLP_SANITIZE: the shipped build's sources and flags plus the sanitizers);
// Node itself is not rebuilt, the sanitizer runtimes are preloaded into it.
//
//   npm run test:sanitizers            every test file, on the best kernel path of this CPU
//   npm run test:sanitizers -- FILES   those test files only
//
// Also runs the native-heavy test files on the portable kernels (NEURALNET_MLP_ISA=generic),
// and native/tests/race_check.cpp built with ThreadSanitizer (training and prediction on several
// threads; any data race fails it). Leak detection is off: Node and V8 keep allocations until
// exit by design.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build-sanitizers');
const addon = join(out, 'Release', 'neuralnet_mlp.node');

function skip(reason) {
  console.log(`SKIPPED: sanitizer tests: ${reason}`);
  process.exit(0);
}

if (process.platform !== 'linux') skip(`they preload the sanitizer runtimes, which this script does on Linux only (this is ${process.platform})`);
const cxx = process.env.CXX || 'g++';
const runtime = (name) => {
  const r = spawnSync(cxx, [`-print-file-name=${name}`], { encoding: 'utf8' });
  const path = r.status === 0 ? r.stdout.trim() : '';
  // Without the library the compiler prints the bare name back.
  return path.includes('/') && existsSync(path) ? path : null;
};
const asan = runtime('libasan.so');
const ubsan = runtime('libubsan.so');
if (!asan || !ubsan) skip(`${cxx} has no ${asan ? 'libubsan.so' : 'libasan.so'} (on Debian it comes with g++)`);

const run = (command, args, env = {}) => {
  console.log(`\n$ ${Object.entries(env).map(([k, v]) => `${k}=${v} `).join('')}${command} ${args.join(' ')}`);
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`failed: ${command} ${args.join(' ')} (${r.signal ?? `status ${r.status}`})`);
    process.exit(1);
  }
};

run('npx', ['cmake-js', 'compile', '--out', 'build-sanitizers', '--CDMLP_SANITIZE=ON']);
// An addon that is not instrumented would pass every test and prove nothing.
const symbols = spawnSync('nm', ['-D', '--undefined-only', addon], { encoding: 'utf8' });
if (symbols.status !== 0 || !/__asan_report_load/.test(symbols.stdout) || !/__ubsan_handle_/.test(symbols.stdout)) {
  console.error(`failed: ${addon} is not instrumented by both sanitizers (nm -D finds no __asan_report_load* or __ubsan_handle_* imports)`);
  process.exit(1);
}

const sanitized = {
  LD_PRELOAD: `${asan}:${ubsan}`,
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  NEURALNET_MLP_ADDON: addon,
  NEURALNET_MLP_REQUIRE_NATIVE: '1',
};
const files = process.argv.slice(2);
run('npx', ['vitest', 'run', ...files], sanitized);
if (files.length === 0) {
  run('npx', ['vitest', 'run', 'test/backends.test.ts', 'test/seed.test.ts', 'test/validation.test.ts', 'test/robustness.test.ts', 'test/concurrency.test.ts'], {
    ...sanitized,
    NEURALNET_MLP_ISA: 'generic',
  });
}

// ThreadSanitizer cannot run inside an uninstrumented Node, so the kernels and the thread pool
// are checked in a standalone program (native/tests/race_check.cpp) built with it.
const tsan = runtime('libtsan.so');
if (files.length > 0) {
  // Only the named test files were asked for.
} else if (!tsan) {
  console.log(`\nSKIPPED: the ThreadSanitizer race check: ${cxx} has no libtsan.so`);
} else {
  const sources = ['native/tests/race_check.cpp', ...['mlp', 'simd', 'avx2', 'avx512', 'cpu'].map((f) => `native/kernels/${f}.cpp`)];
  const program = join(out, 'race_check');
  run(cxx, ['-std=c++17', '-O1', '-g', '-fsanitize=thread', '-ffp-contract=off', '-Wall', '-Wextra', '-pthread', ...sources, '-o', program]);
  run(program, [], { TSAN_OPTIONS: 'halt_on_error=1' });
}
console.log('\nsanitizer tests: no reports');

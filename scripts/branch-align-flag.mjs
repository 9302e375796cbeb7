#!/usr/bin/env node
// Prints the compiler flag that keeps jumps from crossing or ending at 32-byte boundaries, for
// binding.gyp (cmake-js's CMakeLists.txt checks the same flags with check_cxx_compiler_flag):
// GCC passes it to GNU as (-Wa,...), clang takes it as a driver flag. Prints nothing when the
// compiler ($CXX, else g++ as node-gyp's make uses) takes neither: the build then goes on without.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cxx = process.env.CXX || 'g++';
// Never fails: a flag it cannot probe is a flag the build goes without.
let dir;
try {
  dir = mkdtempSync(join(tmpdir(), 'nnmlp-flag-'));
  const source = join(dir, 'probe.cpp');
  writeFileSync(source, 'int probe(int x) { while (x > 1) x = x & 1 ? 3 * x + 1 : x / 2; return x; }\n');
  for (const flag of ['-Wa,-mbranches-within-32B-boundaries', '-mbranches-within-32B-boundaries']) {
    const r = spawnSync(cxx, ['-c', '-O2', '-Werror', flag, source, '-o', join(dir, 'probe.o')], { stdio: 'ignore' });
    if (r.status === 0) {
      console.log(flag);
      break;
    }
  }
} catch {
  // (nothing printed)
} finally {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

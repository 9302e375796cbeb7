/**
 * The addon's kernel paths (generic C++, AVX2 + FMA, AVX-512), chosen at run time:
 * NEURALNET_MLP_ISA picks a lower one, never one the CPU lacks, and the two vector paths (which
 * share their kernel bodies, native/kernels/vector_kernels.inl) give bit-identical weights, costs,
 * probabilities, labels and gradients. Each path runs in a child process
 * (test/helpers/isa-fingerprint.mjs), since the path is fixed once per process.
 *
 * The AVX-512 path runs only on a CPU with AVX-512 (F, BW, VL, DQ), or in the test build that
 * emulates it (`npm run build:avx512-emulated`; CI runs this file against that build with
 * NEURALNET_MLP_REQUIRE_AVX512=1, which turns the skip below into a failure).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nativeAddonInfo, type IsaName } from '../lib/index.js';
import { hasNative } from './helpers/backends.js';

const PATHS: IsaName[] = ['generic', 'avx2', 'avx512'];
const info = nativeAddonInfo();
const best = info.bestIsa ?? 'generic';
/** The paths this build can run on this CPU. */
const runnable = hasNative ? PATHS.slice(0, PATHS.indexOf(best) + 1) : [];
const hasAvx512 = runnable.includes('avx512');

if (process.env.NEURALNET_MLP_REQUIRE_AVX512 === '1' && !hasAvx512) {
  throw new Error(`NEURALNET_MLP_REQUIRE_AVX512=1, but the addon at ${info.path ?? '(none)'} cannot run its AVX-512 path here (best: ${best}).`);
}
if (hasNative && !hasAvx512) {
  console.log(
    `isa.test.ts: the AVX-512 comparison is SKIPPED: this CPU has no AVX-512 (F, BW, VL, DQ) for the addon at ${info.path} ` +
      `(its best path here: ${best}). CI checks that path on the emulated build (.ci/run).`,
  );
}

interface Fingerprint {
  isa: IsaName;
  bestIsa: IsaName;
  cases: Record<string, string>;
}

const script = fileURLToPath(new URL('./helpers/isa-fingerprint.mjs', import.meta.url));
const fingerprints = new Map<string, Fingerprint>();

/** What the package computes with NEURALNET_MLP_ISA=wanted (memoised: one child process per value). */
function fingerprint(wanted: string): Fingerprint {
  const known = fingerprints.get(wanted);
  if (known) return known;
  const child = spawnSync(process.execPath, [script], {
    env: { ...process.env, NEURALNET_MLP_ISA: wanted },
    encoding: 'utf8',
    timeout: 120_000,
  });
  const output = `NEURALNET_MLP_ISA=${wanted}: exit status ${child.status}, signal ${child.signal}\n${child.stdout}\n${child.stderr}`;
  expect(child.status, output).toBe(0);
  const result = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '') as Fingerprint;
  fingerprints.set(wanted, result);
  return result;
}

describe.skipIf(!hasNative)('kernel paths', () => {
  it('NEURALNET_MLP_ISA selects each path the CPU supports and falls back from one it lacks', () => {
    for (const wanted of [...PATHS, 'unknown-isa']) {
      const { isa, bestIsa } = fingerprint(wanted);
      expect(bestIsa, `NEURALNET_MLP_ISA=${wanted}`).toBe(best);
      const expected = PATHS.includes(wanted as IsaName) && runnable.includes(wanted as IsaName) ? wanted : best;
      expect(isa, `NEURALNET_MLP_ISA=${wanted}`).toBe(expected);
    }
  });

  it('every path gives the same bits for 1 and 2 threads', () => {
    for (const isa of runnable) {
      const { cases } = fingerprint(isa);
      const names = Object.keys(cases).filter((name) => name.endsWith(', 1 thread(s)'));
      expect(names.length).toBeGreaterThanOrEqual(10);
      for (const name of names) expect(cases[name.replace(', 1 thread(s)', ', 2 thread(s)')], `${isa}: ${name}`).toBe(cases[name]);
    }
  });

  it.skipIf(!hasAvx512)('AVX-512 gives the same bits as AVX2 (weights, costs, probabilities, labels, gradients)', () => {
    const avx2 = fingerprint('avx2');
    const avx512 = fingerprint('avx512');
    expect([avx2.isa, avx512.isa]).toEqual(['avx2', 'avx512']);
    expect(Object.keys(avx512.cases)).toEqual(Object.keys(avx2.cases));
    for (const [name, hash] of Object.entries(avx2.cases)) expect(avx512.cases[name], name).toBe(hash);
  });
});

/**
 * Seeded fuzzing of everything that reads untrusted bytes: the IDX parser (plain and gzipped) and
 * both model loaders (JSON and safetensors). Every mutated or truncated input must end in either
 * a valid result or a thrown, typed error; never another kind of error, a crash or a hang (each
 * call is timed against a generous limit), and inputs declaring huge sizes must fail fast instead
 * of allocating what they declare. Afterwards Object.prototype must be untouched.
 *
 * The generator is seeded (test/helpers/robust-prng.ts); each suite prints its seed, and
 * `FUZZ_SEED=<n> npx vitest run test/robustness.test.ts` repeats a run with another seed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { NeuralNetMLP, parseIdx, type IdxArray, type IdxDtype, type ModelJSON } from '../lib/index.js';
import { Prng, fuzzSeed } from './helpers/robust-prng.js';
import {
  buildSafetensors,
  interestingLengths,
  mutateBytes,
  mutateBytesStacked,
  mutateIdxHeader,
  mutateJsonStructure,
  mutateJsonText,
  specialFloatBytes,
  splitSafetensors,
  type Mutant,
} from './helpers/robust-mutate.js';
import { sameBits, syntheticSet } from './helpers/robust-data.js';

/** A call taking longer than this counts as a hang (inputs here are at most a few megabytes). */
const CALL_LIMIT_MS = 3000;

/** Snapshot of the prototypes a hostile key could reach, taken before any fuzzing. */
const PROTOTYPES = { Object: Object.prototype, Array: Array.prototype, Function: Function.prototype };
const prototypeKeys = Object.fromEntries(Object.entries(PROTOTYPES).map(([k, p]) => [k, Reflect.ownKeys(p).map(String).sort()]));

/** Outcome counts and failures of one fuzz family. */
class FuzzLog {
  readonly failures: string[] = [];
  readonly counts = new Map<string, number>();
  maxMs = 0;
  maxWhat = '';
  cases = 0;

  constructor(readonly name: string, readonly seed: number) {}

  /**
   * Runs `fn` on one input: `check` judges a returned value (null when it is valid), `judge` a
   * thrown one (null when it is an allowed error). Records the outcome and the time taken.
   */
  run<T>(label: string, fn: () => T, check: (value: T) => string | null, judge: (error: unknown) => string | null): void {
    const what = label.length > 160 ? `${label.slice(0, 160)}…` : label;
    this.cases++;
    const started = performance.now();
    let outcome: string;
    let problem: string | null;
    try {
      const value = fn();
      outcome = 'valid result';
      problem = check(value);
    } catch (error) {
      outcome = errorLabel(error);
      problem = judge(error);
    }
    const ms = performance.now() - started;
    if (ms > this.maxMs) {
      this.maxMs = ms;
      this.maxWhat = what;
    }
    if (ms > CALL_LIMIT_MS) problem = `took ${ms.toFixed(0)} ms (limit ${CALL_LIMIT_MS} ms)`;
    this.counts.set(outcome, (this.counts.get(outcome) ?? 0) + 1);
    if (problem !== null && this.failures.length < 25) this.failures.push(`[seed ${this.seed}, case ${this.cases}] ${what}: ${problem}`);
  }

  report(): void {
    const counts = [...this.counts].map(([k, v]) => `${k}: ${v}`).join(', ');
    console.log(`[fuzz] ${this.name}: ${this.cases} cases (${counts}); slowest ${this.maxMs.toFixed(1)} ms (${this.maxWhat})`);
  }
}

function errorLabel(error: unknown): string {
  if (!(error instanceof Error)) return `non-Error ${typeof error}`;
  const code = (error as { code?: unknown }).code;
  return `${error.name}${typeof code === 'string' ? ` ${code}` : ''}`;
}

/** parseIdx may throw ERR_INVALID_FILE, or a TypeError/RangeError; nothing else. */
function judgeIdxError(error: unknown): string | null {
  if (!(error instanceof Error)) return `threw a non-Error: ${String(error)}`;
  if ((error as { code?: unknown }).code === 'ERR_INVALID_FILE') return null;
  if (error instanceof TypeError || error instanceof RangeError) return null;
  return `threw ${errorLabel(error)}: ${error.message}`;
}

/** Model loaders must reject a bad file with ERR_INVALID_FILE (an Error naming the problem). */
function judgeModelError(error: unknown): string | null {
  if (!(error instanceof Error)) return `threw a non-Error: ${String(error)}`;
  if ((error as { code?: unknown }).code === 'ERR_INVALID_FILE' && error.message.length > 0) return null;
  return `threw ${errorLabel(error)} instead of an ERR_INVALID_FILE error: ${error.message.slice(0, 300)}`;
}

// ---------------------------------------------------------------------------------------------
// IDX

const IDX_TYPES: Record<IdxDtype, { code: number; size: number; ctor: new (n: number) => ArrayLike<number> }> = {
  uint8: { code: 0x08, size: 1, ctor: Uint8Array },
  int8: { code: 0x09, size: 1, ctor: Int8Array },
  int16: { code: 0x0b, size: 2, ctor: Int16Array },
  int32: { code: 0x0c, size: 4, ctor: Int32Array },
  float32: { code: 0x0d, size: 4, ctor: Float32Array },
  float64: { code: 0x0e, size: 8, ctor: Float64Array },
};

function idxFile(rng: Prng, dtype: IdxDtype, shape: number[]): Uint8Array {
  const { code, size } = IDX_TYPES[dtype];
  const count = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(4 + 4 * shape.length + count * size);
  const view = new DataView(out.buffer);
  out[2] = code;
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(rng.bytes(count * size), 4 + 4 * shape.length);
  return out;
}

/** A returned IdxArray is valid when its data has the right type and product-of-shape length. */
function checkIdx(result: IdxArray, raw: Uint8Array | null): string | null {
  const info = IDX_TYPES[result.dtype];
  if (!info) return `unknown dtype ${String(result.dtype)}`;
  if (!(result.data instanceof info.ctor)) return `data is a ${result.data?.constructor?.name} for dtype ${result.dtype}`;
  const { shape } = result;
  if (!Array.isArray(shape) || shape.length < 1 || shape.length > 4) return `shape ${JSON.stringify(shape)} has ${shape?.length} dimensions`;
  if (!shape.every((d) => Number.isInteger(d) && d >= 1)) return `shape ${JSON.stringify(shape)} has a dimension below 1`;
  const count = shape.reduce((a, b) => a * b, 1);
  if (result.data.length !== count) return `data length ${result.data.length} but shape ${JSON.stringify(shape)} holds ${count}`;
  if (raw && raw.length !== 4 + 4 * shape.length + count * info.size) {
    return `accepted ${raw.length} bytes but header + data of shape ${JSON.stringify(shape)} is ${4 + 4 * shape.length + count * info.size}`;
  }
  return null;
}

function idxBases(rng: Prng): { name: string; bytes: Uint8Array }[] {
  return [
    { name: 'uint8 [3,4,5]', bytes: idxFile(rng, 'uint8', [3, 4, 5]) },
    { name: 'uint8 [10] (labels)', bytes: idxFile(rng, 'uint8', [10]) },
    { name: 'uint8 [2,28,28] (images)', bytes: idxFile(rng, 'uint8', [2, 28, 28]) },
    { name: 'int8 [2,2,2,2]', bytes: idxFile(rng, 'int8', [2, 2, 2, 2]) },
    { name: 'int16 [2,3]', bytes: idxFile(rng, 'int16', [2, 3]) },
    { name: 'int32 [5]', bytes: idxFile(rng, 'int32', [5]) },
    { name: 'float32 [2,3]', bytes: idxFile(rng, 'float32', [2, 3]) },
    { name: 'float64 [3,1]', bytes: idxFile(rng, 'float64', [3, 1]) },
  ];
}

/** One IDX mutation: header edits half the time (they reach the most branches), else byte damage. */
function mutateIdx(rng: Prng, bytes: Uint8Array, others: Uint8Array[]): Mutant {
  const r = rng.next();
  if (r < 0.45) return mutateIdxHeader(rng, bytes);
  if (r < 0.55) {
    // Two edits: e.g. a larger shape and a matching extension, so some mutants are valid again.
    const first = mutateIdxHeader(rng, bytes);
    const second = rng.chance(0.5) ? mutateBytes(rng, first.bytes) : mutateIdxHeader(rng, first.bytes);
    return { bytes: second.bytes, what: `${first.what} + ${second.what}` };
  }
  if (r < 0.6) {
    // Crossover: the header of one file, the body of another.
    const other = rng.pick(others);
    const cut = 4 + 4 * Math.min(4, bytes[3] ?? 0);
    const out = new Uint8Array(cut + Math.max(0, other.length - cut));
    out.set(bytes.subarray(0, cut));
    out.set(other.subarray(Math.min(cut, other.length)), cut);
    return { bytes: out, what: 'header of one file, body of another' };
  }
  return mutateBytesStacked(rng, bytes);
}

describe('parseIdx under fuzzing', () => {
  it('plain IDX: 2,400 mutated and truncated files each give a valid array or a typed error', () => {
    const seed = fuzzSeed('parseIdx plain', 0x1d0c0de);
    const rng = new Prng(seed);
    const bases = idxBases(rng);
    const log = new FuzzLog('parseIdx plain', seed);
    for (const base of bases) {
      log.run(`valid ${base.name}`, () => parseIdx(base.bytes), (v) => checkIdx(v, base.bytes), (e) => `valid file rejected: ${String(e)}`);
    }
    for (let i = 0; i < 2400; i++) {
      const base = rng.pick(bases);
      const m = mutateIdx(rng, base.bytes, bases.map((b) => b.bytes));
      // Sometimes hand the parser a view at an odd offset into a larger buffer.
      let input = m.bytes;
      if (rng.chance(0.1)) {
        const host = new Uint8Array(m.bytes.length + 3);
        host.set(m.bytes, 3);
        input = host.subarray(3);
      }
      log.run(`${base.name}: ${m.what}`, () => parseIdx(input, 'fuzz.idx'), (v) => checkIdx(v, m.bytes), judgeIdxError);
    }
    log.report();
    expect(log.failures).toEqual([]);
    expect(log.counts.get('Error ERR_INVALID_FILE') ?? 0).toBeGreaterThan(1000);
    expect(log.counts.get('valid result') ?? 0).toBeGreaterThan(8);
  });

  it('gzipped IDX: 1,200 mutants (damaged gzip streams, and gzipped damaged files) likewise', () => {
    const seed = fuzzSeed('parseIdx gzip', 0x92a1b);
    const rng = new Prng(seed);
    const bases = idxBases(rng);
    const log = new FuzzLog('parseIdx gzip', seed);
    for (let i = 0; i < 1200; i++) {
      const base = rng.pick(bases);
      const r = rng.next();
      let input: Uint8Array;
      let raw: Uint8Array | null = null;
      let what: string;
      if (r < 0.4) {
        // A damaged file, gzipped: exercises the parser behind the decompressor.
        const m = mutateIdx(rng, base.bytes, bases.map((b) => b.bytes));
        raw = m.bytes;
        input = new Uint8Array(gzipSync(m.bytes));
        what = `gzip(${m.what})`;
      } else if (r < 0.9) {
        // A damaged gzip stream: header, deflate data, CRC/size trailer, truncation.
        const m = mutateBytesStacked(rng, new Uint8Array(gzipSync(base.bytes)), 2);
        input = m.bytes;
        what = `damaged gzip: ${m.what}`;
      } else {
        // Two gzip members back to back (gunzip concatenates them), or gzip followed by junk.
        const gz = new Uint8Array(gzipSync(base.bytes));
        const tail = rng.chance(0.5) ? new Uint8Array(gzipSync(rng.pick(bases).bytes)) : rng.bytes(1 + rng.int(32));
        input = new Uint8Array(gz.length + tail.length);
        input.set(gz);
        input.set(tail, gz.length);
        what = 'gzip member followed by another member or junk';
      }
      const options = rng.chance(0.3) ? { maxBytes: 1 + rng.int(4096) } : undefined;
      log.run(`${base.name}: ${what}${options ? ` (maxBytes ${options.maxBytes})` : ''}`, () => parseIdx(input, 'fuzz.idx.gz', options), (v) => {
        const problem = checkIdx(v, raw);
        if (problem) return problem;
        const bytes = 4 + 4 * v.shape.length + v.data.length * IDX_TYPES[v.dtype].size;
        return options && bytes > options.maxBytes ? `returned ${bytes} bytes of IDX data over maxBytes ${options.maxBytes}` : null;
      }, judgeIdxError);
    }
    log.report();
    expect(log.failures).toEqual([]);
    expect(log.counts.get('valid result') ?? 0).toBeGreaterThan(8);
  });

  it('hostile headers and gzip bombs fail fast without allocating what they declare', () => {
    const seed = fuzzSeed('parseIdx targeted', 7);
    const rng = new Prng(seed);
    const log = new FuzzLog('parseIdx targeted', seed);
    const cases: { what: string; bytes: Uint8Array; options?: { maxBytes: number } }[] = [
      { what: 'empty', bytes: new Uint8Array(0) },
      { what: '1 byte', bytes: Uint8Array.of(0) },
      { what: '3 bytes', bytes: Uint8Array.of(0, 0, 8) },
      { what: 'magic only', bytes: Uint8Array.of(0, 0, 8, 1) },
      { what: 'ndims 255, no dims', bytes: Uint8Array.of(0, 0, 8, 255) },
      { what: 'dimension 0', bytes: Uint8Array.of(0, 0, 8, 1, 0, 0, 0, 0) },
      { what: 'gzip magic only', bytes: Uint8Array.of(0x1f, 0x8b) },
    ];
    for (const dtype of Object.keys(IDX_TYPES) as IdxDtype[]) {
      for (let nd = 1; nd <= 4; nd++) {
        for (const dim of [0xffffffff, 0x80000000, 0x10000]) {
          const header = new Uint8Array(4 + 4 * nd + rng.int(17));
          header[2] = IDX_TYPES[dtype].code;
          header[3] = nd;
          for (let d = 0; d < nd; d++) new DataView(header.buffer).setUint32(4 + 4 * d, dim, false);
          cases.push({ what: `${dtype} ${nd} dims of ${dim}`, bytes: header });
        }
      }
    }
    // A gzip bomb: 64 MiB of zeros in about 64 KiB; with a 1 MiB limit it must stop at the limit.
    const bomb = new Uint8Array(gzipSync(new Uint8Array(64 * 1024 * 1024), { level: 9 }));
    cases.push({ what: `gzip bomb (${bomb.length} bytes -> 64 MiB) with maxBytes 1 MiB`, bytes: bomb, options: { maxBytes: 1024 * 1024 } });
    cases.push({ what: 'gzip bomb truncated', bytes: bomb.subarray(0, bomb.length >> 1), options: { maxBytes: 1024 * 1024 } });
    // A header that claims 2^31 uint8s, gzipped with the first megabyte only.
    const claim = new Uint8Array(8 + 1024 * 1024);
    claim.set([0, 0, 8, 1, 0x80, 0, 0, 0]);
    cases.push({ what: 'gzipped header claiming 2 GiB with 1 MiB of data', bytes: new Uint8Array(gzipSync(claim)) });
    for (const c of cases) {
      log.run(c.what, () => parseIdx(c.bytes, 'hostile.idx', c.options), (v) => `accepted: ${JSON.stringify(v.shape)}`, (e) => {
        const problem = judgeIdxError(e);
        if (problem) return problem;
        return (e as { code?: unknown }).code === 'ERR_INVALID_FILE' ? null : `expected ERR_INVALID_FILE, got ${errorLabel(e)}`;
      });
    }
    // Unaligned input: multi-byte elements read at an odd byte offset equal the aligned read.
    const f64 = idxFile(rng, 'float64', [2, 3]);
    const host = new Uint8Array(f64.length + 1);
    host.set(f64, 1);
    const aligned = parseIdx(f64);
    const odd = parseIdx(host.subarray(1));
    expect(sameBits(odd.data as Float64Array, aligned.data as Float64Array)).toBe(true);
    log.report();
    expect(log.failures).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Model files

function baseModels(): { name: string; model: NeuralNetMLP }[] {
  const small = syntheticSet(3, 30, 6, 3);
  const f64 = new NeuralNetMLP({ nOutput: 3, nFeatures: 6, nHidden: 5, l2: 0.01, epochs: 3, eta: 0.1, alpha: 0.1, minibatches: 3, randomState: 1, backend: 'js' });
  f64.fitSync(small.X, small.y);
  const tiny = syntheticSet(4, 12, 4, 2);
  const f32 = new NeuralNetMLP({
    nOutput: 2,
    nFeatures: 4,
    nHidden: [3, 3],
    l1: 0.001,
    epochs: 2,
    eta: 0.05,
    etaSchedule: 'inverse-time',
    decreaseConst: 0.1,
    shuffle: false,
    minibatches: 2,
    randomState: null,
    dtype: 'float32',
    backend: 'js',
  });
  f32.fitSync(tiny.X, tiny.y);
  return [
    { name: 'float64 [6,5,3]', model: f64 },
    { name: 'float32 [4,3,3,2]', model: f32 },
  ];
}

/** A loaded model is valid when its shapes agree, its weights are finite, and it predicts and round-trips. */
function checkModel(model: NeuralNetMLP): string | null {
  if (!(model instanceof NeuralNetMLP)) return 'did not return a NeuralNetMLP';
  const sizes = model.layerSizes;
  const weights = model.weights;
  if (sizes.length < 2 || weights.length !== sizes.length - 1) return `${weights.length} weight matrices for layers ${JSON.stringify(sizes)}`;
  for (let l = 0; l < weights.length; l++) {
    const w = weights[l];
    if (w.rows !== sizes[l + 1] || w.cols !== sizes[l] + 1 || w.data.length !== w.rows * w.cols) return `weights[${l}] has shape ${w.rows} x ${w.cols}`;
    for (let i = 0; i < w.data.length; i++) if (!Number.isFinite(w.data[i])) return `weights[${l}][${i}] is ${w.data[i]}`;
  }
  const nIn = sizes[0];
  const nOut = sizes[sizes.length - 1];
  if (nIn <= 4096) {
    const probe = new Float64Array(2 * nIn);
    for (let i = 0; i < probe.length; i++) probe[i] = (i % 7) / 7;
    const labels = model.predict({ data: probe, rows: 2, cols: nIn });
    if (!(labels instanceof Int32Array) || labels.length !== 2 || labels.some((v) => v < 0 || v >= nOut)) return `predict gave ${String(labels)}`;
  }
  // Round trips keep every value (the sign of a zero weight aside: see the test on -0 below).
  const again = NeuralNetMLP.fromJSON(JSON.stringify(model.toJSON()));
  const binary = NeuralNetMLP.loadSync(model.toSafetensors());
  for (let l = 0; l < weights.length; l++) {
    if (!sameValues(again.weights[l].data, weights[l].data)) return `weights[${l}] changed in a JSON round trip`;
    if (!sameBits(binary.weights[l].data, weights[l].data)) return `weights[${l}] changed in a safetensors round trip`;
  }
  return null;
}

/** Edits that keep a JSON model valid: they must load (a loader that rejects them is too strict). */
function validJsonVariant(rng: Prng, doc: ModelJSON): { text: string; what: string } {
  const d = structuredClone(doc) as ModelJSON & { training?: Record<string, unknown> };
  switch (rng.int(7)) {
    case 0: {
      const w = rng.pick(d.weights);
      const i = rng.int(w.data.length);
      // Extreme but representable in the model's dtype.
      const extremes = d.dtype === 'float32' ? [3.4e38, -3.4e38, 1e-45] : [1e300, -1e300, 5e-324];
      w.data[i] = rng.pick([0, -0, ...extremes, rng.next() * 2 - 1, 12345.678]);
      return { text: JSON.stringify(d), what: `weight ${i} := ${w.data[i]}` };
    }
    case 1: {
      const key = rng.pick(['l1', 'l2', 'alpha', 'decreaseConst', 'eta', 'epochs', 'minibatches', 'randomState', 'shuffle', 'etaSchedule'] as const);
      const values: Record<string, unknown[]> = {
        l1: [0, 0.5, 1e300],
        l2: [0, 2],
        alpha: [0, 0.9],
        decreaseConst: [0, 1e-5],
        eta: [1e-300, 0.5, 1e300],
        epochs: [1, 1000],
        minibatches: [1, 1000],
        randomState: [null, 0, 4294967295],
        shuffle: [true, false],
        etaSchedule: ['compounding', 'inverse-time'],
      };
      (d.options as unknown as Record<string, unknown>)[key] = rng.pick(values[key]);
      return { text: JSON.stringify(d), what: `options.${key} := ${JSON.stringify(d.options[key])}` };
    }
    case 2:
      delete d.training;
      return { text: JSON.stringify(d), what: 'no training info' };
    case 3: {
      // Another architecture, consistently: hidden layer l resized, weights redrawn to fit.
      const l = 1 + rng.int(d.layers.length - 2);
      d.layers[l] = 1 + rng.int(8);
      d.weights = d.layers.slice(1).map((units, k) => {
        const cols = d.layers[k] + 1;
        return { rows: units, cols, data: Array.from({ length: units * cols }, () => rng.next() - 0.5) };
      });
      return { text: JSON.stringify(d), what: `layers := ${JSON.stringify(d.layers)}` };
    }
    case 4:
      return { text: JSON.stringify(d, null, rng.pick([1, 2, '\t'])), what: 'pretty-printed' };
    case 5:
      return { text: rng.pick(['\uFEFF', ' \n\t', '\r\n']) + JSON.stringify(d) + rng.pick(['', '\n', '  ']), what: 'leading BOM/whitespace, trailing whitespace' };
    default: {
      const reordered = Object.fromEntries(Object.entries(d).reverse());
      return { text: JSON.stringify(reordered), what: 'keys in reverse order' };
    }
  }
}

/** Edits that keep a safetensors model valid. */
function validSafetensorsVariant(rng: Prng, bytes: Uint8Array, elem: 4 | 8): { bytes: Uint8Array; what: string } {
  const { header, data } = splitSafetensors(bytes);
  const kind = rng.int(3);
  if (kind === 0) {
    const out = data.slice();
    const view = new DataView(out.buffer);
    const i = rng.int(out.length / elem);
    const v = rng.pick([0, -0, 1e30, -1e-30, rng.next() * 2 - 1]);
    if (elem === 4) view.setFloat32(i * elem, v, true);
    else view.setFloat64(i * elem, v, true);
    return { bytes: buildSafetensors(header, out), what: `element ${i} := ${v}` };
  }
  if (kind === 1) {
    return { bytes: buildSafetensors(header.trimEnd() + ' '.repeat(rng.int(40)), data), what: 'header padding changed' };
  }
  // The tensors stored in the other order (data_offsets updated): still tiles the data exactly.
  const h = JSON.parse(header) as Record<string, { data_offsets: [number, number] } | Record<string, string>>;
  const names = Object.keys(h).filter((k) => k !== '__metadata__');
  const chunks = names.map((n) => {
    const [b, e] = (h[n] as { data_offsets: [number, number] }).data_offsets;
    return { n, bytes: data.slice(b, e) };
  });
  chunks.reverse();
  const out = new Uint8Array(data.length);
  let at = 0;
  for (const c of chunks) {
    out.set(c.bytes, at);
    (h[c.n] as { data_offsets: [number, number] }).data_offsets = [at, at + c.bytes.length];
    at += c.bytes.length;
  }
  return { bytes: buildSafetensors(JSON.stringify(h), out), what: 'tensors stored in reverse order' };
}

describe('model loaders under fuzzing', () => {
  const bases = baseModels();

  it('JSON model files: 2,000 mutants each load as a valid model or throw ERR_INVALID_FILE', () => {
    const seed = fuzzSeed('loadSync JSON', 0x15011);
    const rng = new Prng(seed);
    const log = new FuzzLog('loadSync JSON', seed);
    const validRejected: string[] = [];
    const texts = bases.map((b) => ({ name: b.name, doc: b.model.toJSON(), text: JSON.stringify(b.model.toJSON()) }));
    for (let i = 0; i < 2000; i++) {
      const base = rng.pick(texts);
      const r = rng.next();
      let bytes: Uint8Array;
      let what: string;
      if (r < 0.45) {
        const m = mutateJsonStructure(rng, base.text);
        bytes = new TextEncoder().encode(m.text);
        what = m.what;
      } else if (r < 0.6) {
        // Two structural edits at once.
        const a = mutateJsonStructure(rng, base.text);
        let second: { text: string; what: string };
        try {
          second = mutateJsonStructure(rng, a.text);
        } catch {
          second = { text: a.text, what: '(first edit left invalid JSON)' };
        }
        bytes = new TextEncoder().encode(second.text);
        what = `${a.what} + ${second.what}`;
      } else if (r < 0.9) {
        const m = mutateJsonText(rng, base.text);
        bytes = m.bytes;
        what = m.what;
      } else {
        const v = validJsonVariant(rng, base.doc);
        bytes = new TextEncoder().encode(v.text);
        what = `valid variant: ${v.what}`;
        const before = log.counts.get('valid result') ?? 0;
        log.run(`${base.name}: ${what}`, () => NeuralNetMLP.loadSync(bytes), checkModel, judgeModelError);
        if ((log.counts.get('valid result') ?? 0) === before) validRejected.push(what);
        continue;
      }
      // Bytes in a Buffer, in a Uint8Array, or in a view at an offset into a larger buffer.
      const form = rng.int(3);
      const input = form === 0 ? Buffer.from(bytes) : form === 1 ? bytes : offsetView(bytes, 1 + rng.int(7));
      log.run(`${base.name}: ${what}`, () => NeuralNetMLP.loadSync(input), checkModel, judgeModelError);
    }
    log.report();
    expect(log.failures).toEqual([]);
    expect(validRejected).toEqual([]);
    expect(log.counts.get('Error ERR_INVALID_FILE') ?? 0).toBeGreaterThan(1000);
  });

  it('fromJSON on hostile objects (own __proto__/constructor keys, getters, odd prototypes) rejects them', () => {
    const seed = fuzzSeed('fromJSON objects', 11);
    const log = new FuzzLog('fromJSON objects', seed);
    const doc = bases[0].model.toJSON();
    const text = JSON.stringify(doc);
    const hostile: { what: string; value: () => unknown }[] = [
      { what: 'own __proto__ key at the top', value: () => JSON.parse(text.replace('{', '{"__proto__":{"polluted":"yes"},')) },
      { what: 'own __proto__ key in options', value: () => JSON.parse(text.replace('"options":{', '"options":{"__proto__":{"polluted":"yes"},')) },
      { what: 'constructor.prototype in training', value: () => JSON.parse(text.replace('"training":{', '"training":{"constructor":{"prototype":{"polluted":"yes"}},')) },
      { what: 'a class instance', value: () => Object.assign(new (class Doc {})(), doc) },
      { what: 'an array', value: () => [doc] },
      { what: 'a Map', value: () => new Map(Object.entries(doc)) },
      { what: 'null', value: () => null },
      { what: 'a number', value: () => 42 },
      { what: 'weights data as a Float64Array', value: () => ({ ...doc, weights: doc.weights.map((w) => ({ ...w, data: Float64Array.from(w.data) })) }) },
      { what: 'options inherited from a prototype', value: () => ({ ...doc, options: Object.create(doc.options) as object }) },
      {
        what: 'a getter that throws',
        value: () => {
          const d: Record<string, unknown> = { ...doc };
          Object.defineProperty(d, 'layers', { enumerable: true, get: () => { throw new Error('getter ran'); } });
          return d;
        },
      },
    ];
    for (const h of hostile) {
      log.run(h.what, () => NeuralNetMLP.fromJSON(h.value()), (m) => `accepted: layers ${JSON.stringify(m.layerSizes)}`, (e) => {
        // A getter's own error passing through is acceptable; anything else must be ERR_INVALID_FILE.
        if (e instanceof Error && e.message === 'getter ran') return null;
        return judgeModelError(e);
      });
    }
    log.report();
    expect(log.failures).toEqual([]);
  });

  it('safetensors files: 2,000 mutants (length field, header, data, truncation) load validly or throw ERR_INVALID_FILE', () => {
    const seed = fuzzSeed('loadSync safetensors', 0x5afe);
    const rng = new Prng(seed);
    const log = new FuzzLog('loadSync safetensors', seed);
    const validRejected: string[] = [];
    const files = bases.map((b) => ({ name: b.name, bytes: b.model.toSafetensors(), elem: (b.model.options.dtype === 'float32' ? 4 : 8) as 4 | 8 }));
    let dataFlipsAccepted = 0;
    for (let i = 0; i < 2000; i++) {
      const base = rng.pick(files);
      const parts = splitSafetensors(base.bytes);
      const n = Number(parts.headerLength);
      const kind = rng.int(10);
      let bytes: Uint8Array;
      let what: string;
      let dataOnly = false;
      if (kind === 0) {
        const len = rng.pick(interestingLengths(rng, parts.headerLength, base.bytes.length));
        bytes = base.bytes.slice();
        new DataView(bytes.buffer).setBigUint64(0, len, true);
        what = `header length := ${len}`;
      } else if (kind === 1) {
        const m = mutateBytes(rng, base.bytes, { start: 0, end: 8 });
        bytes = m.bytes;
        what = `length field: ${m.what}`;
      } else if (kind === 2) {
        const m = mutateBytes(rng, base.bytes, { start: 8, end: 8 + n });
        bytes = m.bytes;
        what = `header bytes: ${m.what}`;
      } else if (kind === 3) {
        const m = mutateJsonStructure(rng, parts.header);
        bytes = rng.chance(0.8) ? buildSafetensors(m.text, parts.data) : buildSafetensors(m.text, parts.data, parts.headerLength);
        what = `header JSON: ${m.what}`;
      } else if (kind === 4) {
        // An edit inside one of the JSON strings of __metadata__.
        const header = JSON.parse(parts.header) as { __metadata__: Record<string, string> };
        const key = rng.pick(['layers', 'options', 'training', 'version', 'dtype', 'format']);
        const old = header.__metadata__[key];
        let next: string;
        try {
          next = mutateJsonStructure(rng, old).text;
        } catch {
          next = rng.pick(['', '[', 'null', '1e400', '"x"', '{"__proto__":{"polluted":"yes"}}']);
        }
        header.__metadata__[key] = next;
        bytes = buildSafetensors(JSON.stringify(header), parts.data);
        what = `__metadata__.${key}: ${JSON.stringify(old).slice(0, 30)} -> ${JSON.stringify(next).slice(0, 60)}`;
      } else if (kind === 5 || kind === 6) {
        // Data damage: NaN/Inf/extreme values must be rejected; other values give a finite model.
        dataOnly = true;
        bytes = base.bytes.slice();
        if (kind === 5) {
          const s = specialFloatBytes(rng, base.elem);
          const at = 8 + n + base.elem * rng.int(parts.data.length / base.elem);
          bytes.set(s.bytes, at);
          what = `data element at byte ${at} := ${s.what}`;
        } else {
          const m = mutateBytes(rng, base.bytes, { start: 8 + n, end: base.bytes.length });
          bytes = m.bytes;
          what = `data bytes: ${m.what}`;
          dataOnly = m.bytes.length === base.bytes.length;
        }
      } else if (kind === 7) {
        const cut = rng.int(base.bytes.length);
        bytes = base.bytes.slice(0, cut);
        what = `truncated to ${cut} of ${base.bytes.length}`;
      } else if (kind === 8) {
        const m = mutateBytesStacked(rng, base.bytes);
        bytes = m.bytes;
        what = m.what;
      } else {
        const v = validSafetensorsVariant(rng, base.bytes, base.elem);
        const before = log.counts.get('valid result') ?? 0;
        log.run(`${base.name}: valid variant: ${v.what}`, () => NeuralNetMLP.loadSync(v.bytes), checkModel, judgeModelError);
        if ((log.counts.get('valid result') ?? 0) === before) validRejected.push(v.what);
        continue;
      }
      const before = log.counts.get('valid result') ?? 0;
      const input = rng.chance(0.3) ? offsetView(bytes, 1 + rng.int(7)) : bytes;
      log.run(`${base.name}: ${what}`, () => NeuralNetMLP.loadSync(input), checkModel, judgeModelError);
      if (dataOnly && (log.counts.get('valid result') ?? 0) > before) dataFlipsAccepted++;
    }
    log.report();
    console.log(`[fuzz] loadSync safetensors: ${dataFlipsAccepted} data-only mutants loaded (all with finite weights)`);
    expect(log.failures).toEqual([]);
    expect(validRejected).toEqual([]);
    expect(log.counts.get('Error ERR_INVALID_FILE') ?? 0).toBeGreaterThan(1000);
  });

  it('hostile model files fail fast: huge lengths, huge arrays, deep nesting, non-objects', async () => {
    const seed = fuzzSeed('model targeted', 13);
    const log = new FuzzLog('model targeted', seed);
    const st = bases[0].model.toSafetensors();
    const { header, data } = splitSafetensors(st);
    const doc = bases[0].model.toJSON();
    const text = JSON.stringify(doc);
    const cases: { what: string; bytes: Uint8Array }[] = [
      { what: 'empty', bytes: new Uint8Array(0) },
      { what: '7 bytes', bytes: new Uint8Array(7) },
      { what: '8 zero bytes', bytes: new Uint8Array(8) },
      { what: 'only whitespace', bytes: new TextEncoder().encode('   \n') },
      { what: 'only a BOM', bytes: Uint8Array.of(0xef, 0xbb, 0xbf) },
      ...[2n ** 64n - 1n, 2n ** 63n, 2n ** 53n + 1n, 2n ** 32n, BigInt(MAX_HEADER + 8)].map((len) => ({
        what: `header length ${len}`,
        bytes: buildSafetensors(header, data, len),
      })),
      { what: 'a 2 MiB header of spaces', bytes: buildSafetensors(header + ' '.repeat(2 * 1024 * 1024), data) },
      ...['null', '[]', '{}', '"neuralnet-mlp"', '1', 'true', '{"format":"neuralnet-mlp"}'].map((t) => ({ what: `JSON ${t}`, bytes: new TextEncoder().encode(t) })),
      { what: 'JSON nested 100,000 deep', bytes: new TextEncoder().encode('{"a":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}') },
      {
        what: 'layers declaring 2^24 x 2^24 units',
        bytes: new TextEncoder().encode(JSON.stringify({ ...doc, layers: [2 ** 24, 2 ** 24, 3] })),
      },
      {
        what: 'layers at the weight limit with tiny weight arrays',
        bytes: new TextEncoder().encode(JSON.stringify({ ...doc, layers: [8190, 8190, 3] })),
      },
      {
        what: 'weights data with a million entries',
        bytes: new TextEncoder().encode(text.replace(/"data":\[[^\]]*\]/, `"data":[${'0,'.repeat(1_000_000)}0]`)),
      },
      {
        what: 'safetensors tensor claiming 2^53 bytes',
        bytes: buildSafetensors(header.replace(/"data_offsets":\[0,(\d+)\]/, '"data_offsets":[0,9007199254740991]'), data),
      },
      {
        what: 'safetensors layers metadata of 2^24 units',
        bytes: buildSafetensors(header.replace('"[6,5,3]"', JSON.stringify(JSON.stringify([2 ** 24, 2 ** 24, 3]))), data),
      },
    ];
    for (const c of cases) {
      log.run(c.what, () => NeuralNetMLP.loadSync(c.bytes), (m) => `accepted: layers ${JSON.stringify(m.layerSizes)}`, judgeModelError);
    }
    // The asynchronous loader rejects (never throws synchronously, never resolves) on the same input.
    for (const c of cases.slice(0, 6)) {
      await expect(NeuralNetMLP.load(c.bytes)).rejects.toMatchObject({ code: 'ERR_INVALID_FILE' });
    }
    log.report();
    expect(log.failures).toEqual([]);
  });

  // Cases the fuzzing found, pinned down one by one.

  it('a float32 JSON model with a weight beyond float32 range is rejected, not loaded as Infinity', () => {
    const doc = bases[1].model.toJSON();
    for (const big of [1e300, -1e300, 3.5e38, -Number.MAX_VALUE]) {
      const d = structuredClone(doc);
      d.weights[0].data[1] = big;
      let loaded: NeuralNetMLP | undefined;
      let error: unknown;
      try {
        loaded = NeuralNetMLP.fromJSON(JSON.stringify(d));
      } catch (e) {
        error = e;
      }
      const w = loaded?.weights[0].data[1];
      expect(error, `float32 weight ${big} loaded as ${w}`).toMatchObject({ code: 'ERR_INVALID_FILE' });
    }
  });

  it('a file with more epochs x minibatches than the model accepts throws ERR_INVALID_FILE, not RangeError', () => {
    const doc = bases[0].model.toJSON();
    const d = { ...doc, options: { ...doc.options, epochs: 2 ** 40 } };
    const safetensors = bases[0].model.toSafetensors();
    const { header, data } = splitSafetensors(safetensors);
    const meta = JSON.parse(header) as { __metadata__: Record<string, string> };
    meta.__metadata__.options = JSON.stringify(d.options);
    for (const [what, load] of [
      ['JSON', () => NeuralNetMLP.loadSync(new TextEncoder().encode(JSON.stringify(d)))],
      ['safetensors', () => NeuralNetMLP.loadSync(buildSafetensors(JSON.stringify(meta), data))],
      ['fromJSON', () => NeuralNetMLP.fromJSON(d)],
    ] as const) {
      let error: unknown;
      try {
        load();
      } catch (e) {
        error = e;
      }
      expect(judgeModelError(error), what).toBeNull();
    }
  });

  it('a safetensors header with a deeply nested shape throws ERR_INVALID_FILE, not a stack overflow', () => {
    const { header, data } = splitSafetensors(bases[0].model.toSafetensors());
    const h = JSON.parse(header) as Record<string, Record<string, unknown>>;
    const depth = 20_000;
    const deep = '['.repeat(depth) + ']'.repeat(depth);
    const text = JSON.stringify({ ...h, w1: { ...h.w1, shape: '\u0001' } }).replace('"\\u0001"', deep);
    let error: unknown;
    try {
      NeuralNetMLP.loadSync(buildSafetensors(text, data));
    } catch (e) {
      error = e;
    }
    expect(judgeModelError(error)).toBeNull();
  });

  it('save/load of a JSON model keeps -0 weights bit-identical (lib/format.ts promises bit-identical float64)', () => {
    const doc = bases[0].model.toJSON();
    doc.weights[0].data[1] = -0;
    const once = NeuralNetMLP.fromJSON(doc);
    expect(Object.is(once.weights[0].data[1], -0), 'fromJSON(object) keeps -0').toBe(true);
    // (JSON.stringify itself writes -0 as 0; save() writes the model's own JSON text.)
    const dir = mkdtempSync(join(tmpdir(), 'neuralnet-mlp-robustness-'));
    try {
      const path = join(dir, 'model.json');
      once.saveSync(path);
      const twice = NeuralNetMLP.loadSync(path);
      expect(Object.is(twice.weights[0].data[1], -0), 'saveSync -> loadSync keeps -0').toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves Object.prototype, Array.prototype and Function.prototype unpolluted', () => {
    for (const [name, proto] of Object.entries(PROTOTYPES)) {
      expect(Reflect.ownKeys(proto).map(String).sort(), `${name}.prototype keys`).toEqual(prototypeKeys[name]);
    }
    const probe = {} as Record<string, unknown>;
    expect(probe.polluted).toBeUndefined();
    expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(probe)).toBe(Object.prototype);
  });
});

function sameValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The largest safetensors header the loader reads (lib/format.ts), to aim just past it. */
const MAX_HEADER = 1024 * 1024;

/** The same bytes as a view `offset` bytes into a larger buffer. */
function offsetView(bytes: Uint8Array, offset: number): Uint8Array {
  const host = new Uint8Array(bytes.length + offset + 3);
  host.fill(0xaa);
  host.set(bytes, offset);
  return host.subarray(offset, offset + bytes.length);
}

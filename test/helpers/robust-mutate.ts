/**
 * Mutators for the fuzz tests: generic byte-level damage, IDX header edits, JSON edits (text
 * and structure, including values JSON.stringify cannot write, such as NaN or 1e400) and
 * safetensors framing. Every mutator returns the new bytes and a short description of what it
 * did, so a failure message says which mutation broke what.
 */
import type { Prng } from './robust-prng.js';

export interface Mutant {
  bytes: Uint8Array;
  what: string;
}

/** Byte values worth trying: boundaries of signed and unsigned types, ASCII structure characters. */
const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x08, 0x0e, 0x20, 0x22, 0x2c, 0x30, 0x5b, 0x5d, 0x7b, 0x7d];

/** uint32 values worth trying in size fields. */
export const INTERESTING_U32 = [
  0, 1, 2, 3, 7, 8, 27, 28, 255, 256, 0x7fff, 0x8000, 0xffff, 0x10000, 0xffffff, 0x1000000, 0x7fffffff, 0x80000000,
  0xfffffffe, 0xffffffff,
];

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** One generic mutation of a byte string (never a no-op on non-empty input, except by chance). */
export function mutateBytes(rng: Prng, input: Uint8Array, region?: { start: number; end: number }): Mutant {
  const start = region ? Math.min(region.start, input.length) : 0;
  const end = region ? Math.min(region.end, input.length) : input.length;
  const span = Math.max(0, end - start);
  const at = () => start + rng.int(Math.max(span, 1));
  const kind = rng.int(11);
  const bytes = input.slice();
  if (span === 0 && kind < 4) return { bytes: concat(bytes, rng.bytes(1 + rng.int(8))), what: 'extend (empty region)' };
  switch (kind) {
    case 0: {
      const n = 1 + rng.int(8);
      const where: number[] = [];
      for (let i = 0; i < n; i++) {
        const p = at();
        const bit = rng.int(8);
        bytes[p] ^= 1 << bit;
        where.push(p * 8 + bit);
      }
      return { bytes, what: `flip bits ${where.join(',')}` };
    }
    case 1: {
      const n = 1 + rng.int(4);
      const where: string[] = [];
      for (let i = 0; i < n; i++) {
        const p = at();
        bytes[p] = rng.int(256);
        where.push(`${p}=${bytes[p]}`);
      }
      return { bytes, what: `overwrite bytes ${where.join(',')}` };
    }
    case 2: {
      const p = at();
      bytes[p] = rng.pick(INTERESTING_BYTES);
      return { bytes, what: `byte ${p}=0x${bytes[p].toString(16)}` };
    }
    case 3: {
      const p = at();
      const n = Math.min(1 + rng.int(16), bytes.length - p);
      bytes.fill(rng.pick([0x00, 0xff, 0x20]), p, p + n);
      return { bytes, what: `fill ${n} bytes at ${p}` };
    }
    case 4: {
      const n = rng.int(input.length);
      return { bytes: input.slice(0, n), what: `truncate to ${n}` };
    }
    case 5: {
      const n = 1 + rng.int(rng.chance(0.2) ? 4096 : 64);
      return { bytes: concat(bytes, rng.chance(0.5) ? rng.bytes(n) : new Uint8Array(n)), what: `extend by ${n}` };
    }
    case 6: {
      const p = rng.int(input.length + 1);
      const n = 1 + rng.int(16);
      return { bytes: concat(input.subarray(0, p), rng.bytes(n), input.subarray(p)), what: `insert ${n} at ${p}` };
    }
    case 7: {
      const p = rng.int(Math.max(input.length, 1));
      const n = 1 + rng.int(16);
      return { bytes: concat(input.subarray(0, p), input.subarray(p + n)), what: `delete ${n} at ${p}` };
    }
    case 8: {
      const p = rng.int(Math.max(input.length, 1));
      const n = 1 + rng.int(32);
      const chunk = input.slice(p, p + n);
      const q = rng.int(input.length + 1);
      return { bytes: concat(input.subarray(0, q), chunk, input.subarray(q)), what: `duplicate ${chunk.length} from ${p} to ${q}` };
    }
    case 9: {
      const n = 1 + rng.int(input.length);
      return { bytes: input.slice(input.length - n), what: `keep last ${n}` };
    }
    default: {
      const p = at();
      const q = at();
      const t = bytes[p];
      bytes[p] = bytes[q];
      bytes[q] = t;
      return { bytes, what: `swap bytes ${p},${q}` };
    }
  }
}

/** 1 to `max` stacked generic mutations. */
export function mutateBytesStacked(rng: Prng, input: Uint8Array, max = 3): Mutant {
  let bytes = input;
  const what: string[] = [];
  const n = 1 + rng.int(max);
  for (let i = 0; i < n; i++) {
    const m = mutateBytes(rng, bytes);
    bytes = m.bytes;
    what.push(m.what);
  }
  return { bytes, what: what.join(' + ') };
}

/**
 * An edit of an IDX header: the magic bytes, the type byte, the dimension count, or one or all
 * dimension sizes (0, huge, off by one, random).
 */
export function mutateIdxHeader(rng: Prng, input: Uint8Array): Mutant {
  const bytes = input.slice();
  const view = new DataView(bytes.buffer);
  const ndims = bytes.length >= 4 ? bytes[3] : 0;
  const dims = Math.max(0, Math.min(ndims, Math.floor((bytes.length - 4) / 4)));
  const kind = rng.int(7);
  if (kind === 0 || dims === 0) {
    const p = rng.int(2);
    bytes[p] = rng.pick([0x01, 0x08, 0x1f, 0x80, 0xff]);
    return { bytes, what: `magic byte ${p}=${bytes[p]}` };
  }
  if (kind === 1) {
    bytes[2] = rng.chance(0.5) ? rng.pick([0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x00, 0xff]) : rng.int(256);
    return { bytes, what: `type byte=0x${bytes[2].toString(16)}` };
  }
  if (kind === 2) {
    bytes[3] = rng.chance(0.6) ? rng.pick([0, 1, 2, 3, 4, 5, 6, 8, 64, 255]) : rng.int(256);
    return { bytes, what: `ndims=${bytes[3]}` };
  }
  if (kind === 3 || kind === 4) {
    const d = rng.int(dims);
    const old = view.getUint32(4 + 4 * d, false);
    const v = rng.pick([...INTERESTING_U32, old + 1, old - 1 >>> 0, old * 2, rng.uint32()]) >>> 0;
    view.setUint32(4 + 4 * d, v, false);
    return { bytes, what: `dim ${d}=${v}` };
  }
  if (kind === 5) {
    const v = rng.pick([0xffffffff, 0x80000000, 0x10000, 0x7fffffff]);
    for (let d = 0; d < dims; d++) view.setUint32(4 + 4 * d, v, false);
    return { bytes, what: `all ${dims} dims=${v}` };
  }
  // Dimensions whose product overflows 32 bits to a small number (2^32 * k wraps to 0).
  for (let d = 0; d < dims; d++) view.setUint32(4 + 4 * d, d < 2 ? 0x10000 : 1, false);
  return { bytes, what: `dims multiply to 2^32 (wraps to 0 in 32-bit arithmetic)` };
}

// ---------------------------------------------------------------------------------------------
// JSON

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = (string | number)[];

/** Raw JSON text (or text that is not JSON) to put where a value was. */
function evilValueText(rng: Prng): string {
  const depth = rng.pick([64, 1000, 20_000]);
  const options: (() => string)[] = [
    () => '"1"',
    () => '"abc"',
    () => '""',
    () => 'null',
    () => 'true',
    () => 'false',
    () => '0',
    () => '-1',
    () => '-0',
    () => '0.5',
    () => '1.5',
    () => '1e308',
    () => '-1e308',
    () => '1e400',
    () => '-1e400',
    () => '1e-400',
    () => '9007199254740993',
    () => '4294967296',
    () => '16777217',
    () => '2147483648',
    () => 'NaN',
    () => 'Infinity',
    () => '-Infinity',
    () => 'undefined',
    () => '0x10',
    () => '[]',
    () => '{}',
    () => '[1,2,3]',
    () => '[null]',
    () => '{"__proto__":{"polluted":"yes"}}',
    () => '{"constructor":{"prototype":{"polluted":"yes"}}}',
    () => '"__proto__"',
    () => '"constructor"',
    () => `[${'0,'.repeat(rng.pick([1000, 100_000]))}0]`,
    () => JSON.stringify('x'.repeat(rng.pick([65, 100_000]))),
    () => '['.repeat(depth) + ']'.repeat(depth),
    () => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth),
    () => '['.repeat(depth),
  ];
  return rng.pick(options)();
}

const EVIL_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '', ' ', 'weights ', 'Layers', '\u0000'];

function isObject(v: Json): v is { [key: string]: Json } {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Paths to values in `doc`; long arrays contribute a few random elements, not all of them. */
function collectPaths(rng: Prng, doc: Json): Path[] {
  const out: Path[] = [];
  const walk = (v: Json, path: Path) => {
    out.push(path);
    if (Array.isArray(v)) {
      const picks = v.length <= 8 ? v.map((_, i) => i) : [0, v.length - 1, rng.int(v.length), rng.int(v.length)];
      for (const i of picks) walk(v[i], [...path, i]);
    } else if (isObject(v)) {
      for (const k of Object.keys(v)) walk(v[k], [...path, k]);
    }
  };
  walk(doc, []);
  return out;
}

function getAt(doc: Json, path: Path): Json {
  let v: Json = doc;
  for (const k of path) v = (v as Record<string | number, Json>)[k];
  return v;
}

/** Replaces the value at `path` (the root when the path is empty); returns the new root. */
function setAt(doc: Json, path: Path, value: Json): Json {
  if (path.length === 0) return value;
  const parent = getAt(doc, path.slice(0, -1)) as Record<string | number, Json>;
  parent[path[path.length - 1]] = value;
  return doc;
}

/** Placeholders: strings that JSON.stringify writes verbatim, replaced afterwards by raw text. */
class Placeholders {
  readonly #raw = new Map<string, string>();
  make(raw: string): string {
    const token = `\u0001${this.#raw.size}\u0001`;
    this.#raw.set(JSON.stringify(token), raw);
    return token;
  }
  render(doc: Json): string {
    let text = JSON.stringify(doc);
    for (const [token, raw] of this.#raw) text = text.split(token).join(raw);
    return text;
  }
}

/**
 * One structural edit of a JSON document: a value replaced by something hostile, a key renamed
 * (to `__proto__`, `constructor`, ...), added or deleted, a number nudged, an array shortened,
 * lengthened or blown up, two values swapped. Returns the new JSON text.
 */
export function mutateJsonStructure(rng: Prng, text: string): { text: string; what: string } {
  let doc = JSON.parse(text) as Json;
  const ph = new Placeholders();
  const paths = collectPaths(rng, doc);
  const path = rng.pick(paths);
  const where = path.length === 0 ? '(root)' : path.join('.');
  const value = getAt(doc, path);
  const objects = paths.filter((p) => isObject(getAt(doc, p)));
  const arrays = paths.filter((p) => Array.isArray(getAt(doc, p)));
  const numbers = paths.filter((p) => typeof getAt(doc, p) === 'number');
  const kind = rng.int(8);

  if (kind === 0 || kind === 1) {
    const raw = evilValueText(rng);
    doc = setAt(doc, path, ph.make(raw));
    return { text: ph.render(doc), what: `${where} := ${raw.length > 40 ? raw.slice(0, 40) + `… (${raw.length} chars)` : raw}` };
  }
  if (kind === 2 && objects.length > 0) {
    const objPath = rng.pick(objects);
    const obj = getAt(doc, objPath) as Record<string, Json>;
    const keys = Object.keys(obj);
    if (keys.length > 0) {
      const old = rng.pick(keys);
      const name = rng.chance(0.7) ? rng.pick(EVIL_KEYS) : old + 'x';
      const token = ph.make(JSON.stringify(name));
      const renamed: Record<string, Json> = {};
      for (const k of keys) renamed[k === old ? token : k] = obj[k];
      doc = setAt(doc, objPath, renamed);
      return { text: ph.render(doc), what: `rename ${objPath.join('.') || '(root)'}.${old} -> ${JSON.stringify(name)}` };
    }
  }
  if (kind === 3 && objects.length > 0) {
    const objPath = rng.pick(objects);
    const obj = getAt(doc, objPath) as Record<string, Json>;
    const name = rng.pick(EVIL_KEYS);
    const raw = rng.chance(0.5) ? '{"polluted":"yes"}' : evilValueText(rng);
    obj[ph.make(JSON.stringify(name))] = ph.make(raw);
    return { text: ph.render(doc), what: `add ${objPath.join('.') || '(root)'}[${JSON.stringify(name)}] = ${raw.slice(0, 40)}` };
  }
  if (kind === 4 && path.length > 0) {
    const parent = getAt(doc, path.slice(0, -1));
    const last = path[path.length - 1];
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete (parent as Record<string, Json>)[last as string];
    return { text: JSON.stringify(doc), what: `delete ${where}` };
  }
  if (kind === 5 && numbers.length > 0) {
    const p = rng.pick(numbers);
    const old = getAt(doc, p) as number;
    const next = rng.pick([old + 1, old - 1, old * 2, -old, 0, 1, 0.5, 2 ** 24, 2 ** 24 + 1, 2 ** 31, 2 ** 32, 2 ** 53, 1e-300, 1e300, Number.MAX_VALUE]);
    doc = setAt(doc, p, next);
    return { text: JSON.stringify(doc), what: `${p.join('.')}: ${old} -> ${next}` };
  }
  if (kind === 6 && arrays.length > 0) {
    const p = rng.pick(arrays);
    const arr = getAt(doc, p) as Json[];
    const op = rng.int(5);
    if (op === 0) arr.pop();
    else if (op === 1) arr.push(arr.length > 0 ? arr[arr.length - 1] : 0);
    else if (op === 2) arr.length = 0;
    else if (op === 3) arr.reverse();
    else {
      const first = arr.length > 0 ? arr[0] : 0;
      // Many numbers, or a few hundred copies of a nested value (enough to miss every limit).
      const n = typeof first === 'number' ? rng.pick([1000, 100_000]) : 300;
      doc = setAt(doc, p, new Array<Json>(n).fill(first));
    }
    return { text: JSON.stringify(doc), what: `array ${p.join('.') || '(root)'} op ${['pop', 'push', 'clear', 'reverse', 'blow up'][op]}` };
  }
  // Swap two values.
  const other = rng.pick(paths);
  if (path.length > 0 && other.length > 0 && !isPrefix(path, other) && !isPrefix(other, path)) {
    const a = getAt(doc, path);
    const b = getAt(doc, other);
    doc = setAt(doc, path, b);
    doc = setAt(doc, other, a);
    return { text: JSON.stringify(doc), what: `swap ${where} <-> ${other.join('.')}` };
  }
  doc = setAt(doc, path, ph.make(evilValueText(rng)));
  return { text: ph.render(doc), what: `${where} := (evil value)` };
}

function isPrefix(a: Path, b: Path): boolean {
  return a.length <= b.length && a.every((k, i) => b[i] === k);
}

const JSON_TOKENS = [',', ']', '}', '{', '[', '"', ':', 'null', '-', '1e400', 'NaN', '\\u0000', '\\', ' ', '\u2028', '\ud800', '\uFEFF', '0'];

/** One text-level edit of JSON: byte damage of its UTF-8, or a stray token inserted. */
export function mutateJsonText(rng: Prng, text: string): Mutant {
  const bytes = new TextEncoder().encode(text);
  if (rng.chance(0.35)) {
    const token = rng.pick(JSON_TOKENS);
    const p = rng.int(text.length + 1);
    return { bytes: new TextEncoder().encode(text.slice(0, p) + token + text.slice(p)), what: `insert ${JSON.stringify(token)} at ${p}` };
  }
  return mutateBytes(rng, bytes);
}

// ---------------------------------------------------------------------------------------------
// safetensors

export interface SafetensorsParts {
  headerLength: bigint;
  header: string;
  data: Uint8Array;
}

/** Splits a well-formed safetensors file into its header text and data bytes. */
export function splitSafetensors(bytes: Uint8Array): SafetensorsParts {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  const n = Number(headerLength);
  return { headerLength, header: new TextDecoder().decode(bytes.subarray(8, 8 + n)), data: bytes.slice(8 + n) };
}

/** Assembles a safetensors file; the length field is the header's unless `length` is given. */
export function buildSafetensors(header: string | Uint8Array, data: Uint8Array, length?: bigint): Uint8Array {
  const headerBytes = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

/** u64 values worth trying in the safetensors length field, relative to the true length `n` and file size. */
export function interestingLengths(rng: Prng, n: bigint, fileLength: number): bigint[] {
  const f = BigInt(fileLength);
  return [
    0n, 1n, 2n, n - 1n, n + 1n, n + 8n, n - 8n, f - 8n, f - 7n, f, 2n ** 20n, 2n ** 20n + 1n, 2n ** 31n, 2n ** 32n,
    2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, BigInt(rng.uint32()) * 2n ** 32n + BigInt(rng.uint32()),
  ].filter((v) => v >= 0n && v < 2n ** 64n);
}

/** IEEE bit patterns that are not finite numbers, or finite but extreme. */
export function specialFloatBytes(rng: Prng, elem: 4 | 8): { bytes: Uint8Array; what: string } {
  const out = new Uint8Array(elem);
  const view = new DataView(out.buffer);
  const choice = rng.pick(['NaN', 'Infinity', '-Infinity', 'max', 'denormal', '-0', 'quiet NaN payload']);
  const set = (v: number) => (elem === 4 ? view.setFloat32(0, v, true) : view.setFloat64(0, v, true));
  if (choice === 'NaN') set(NaN);
  else if (choice === 'Infinity') set(Infinity);
  else if (choice === '-Infinity') set(-Infinity);
  else if (choice === 'max') set(elem === 4 ? 3.4028234663852886e38 : Number.MAX_VALUE);
  else if (choice === 'denormal') set(elem === 4 ? 1e-45 : 5e-324);
  else if (choice === '-0') set(-0);
  else {
    out.fill(0xff);
  }
  return { bytes: out, what: choice };
}

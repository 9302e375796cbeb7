import { gzipSync } from 'node:zlib';

/** IDX type bytes by name. */
export const IDX_TYPE = { uint8: 0x08, int8: 0x09, int16: 0x0b, int32: 0x0c, float32: 0x0d, float64: 0x0e } as const;

/** Header bytes: 0 0 type ndims, then one big-endian uint32 per dimension. */
export function idxHeader(type: number, shape: readonly number[], magicHi = 0, magicLo = 0): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length);
  const view = new DataView(out.buffer);
  out[0] = magicHi;
  out[1] = magicLo;
  out[2] = type;
  out[3] = shape.length;
  shape.forEach((dim, i) => view.setUint32(4 + 4 * i, dim, false));
  return out;
}

/** Concatenates byte strings. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A complete uint8 IDX file. */
export function idxUint8(shape: readonly number[], data: ArrayLike<number>): Uint8Array {
  return concat(idxHeader(IDX_TYPE.uint8, shape), Uint8Array.from(data));
}

/** A complete IDX file whose elements are written big-endian with the given setter. */
export function idxTyped(
  type: number,
  shape: readonly number[],
  values: readonly number[],
  size: number,
  set: (view: DataView, offset: number, value: number) => void,
): Uint8Array {
  const body = new Uint8Array(values.length * size);
  const view = new DataView(body.buffer);
  values.forEach((v, i) => set(view, i * size, v));
  return concat(idxHeader(type, shape), body);
}

/** gzip-compresses bytes. */
export function gzip(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(bytes));
}

// Writers for small test files in the formats the data loaders read: IDX, .npy, zip/.npz and
// CIFAR-10 batches. Independent of the readers under test (encoders written from the format
// descriptions), plus a temp-dir helper.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { crc32 } from '../../src/data/zip.js';

/** A fresh temp directory, removed by the returned cleanup function. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-data-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeFile(dir: string, name: string, bytes: Uint8Array, gzip = false): string {
  const path = join(dir, gzip ? `${name}.gz` : name);
  writeFileSync(path, gzip ? gzipSync(bytes) : bytes);
  return path;
}

const IDX_CODES = { uint8: [0x08, 1], int8: [0x09, 1], int16: [0x0b, 2], int32: [0x0c, 4], float32: [0x0d, 4], float64: [0x0e, 8] } as const;

/** An IDX file (big-endian) holding `values` with `shape`. */
export function encodeIdx(dtype: keyof typeof IDX_CODES, shape: number[], values: ArrayLike<number>): Uint8Array {
  const [code, bytes] = IDX_CODES[dtype];
  const out = new Uint8Array(4 + 4 * shape.length + values.length * bytes);
  const v = new DataView(out.buffer);
  out[2] = code;
  out[3] = shape.length;
  shape.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  let p = 4 + 4 * shape.length;
  for (let i = 0; i < values.length; i++, p += bytes) {
    const x = values[i]!;
    if (dtype === 'uint8') v.setUint8(p, x);
    else if (dtype === 'int8') v.setInt8(p, x);
    else if (dtype === 'int16') v.setInt16(p, x, false);
    else if (dtype === 'int32') v.setInt32(p, x, false);
    else if (dtype === 'float32') v.setFloat32(p, x, false);
    else v.setFloat64(p, x, false);
  }
  return out;
}

/** A .npy file, format version `major` (1 or 2), little-endian. */
export function encodeNpy(descr: '<f4' | '<f8' | '|i1' | '|u1' | '<i4' | '<i8', shape: number[], values: ArrayLike<number>, major = 1): Uint8Array {
  const bytes = { f4: 4, f8: 8, i1: 1, u1: 1, i4: 4, i8: 8 }[descr.slice(1) as 'f4']!;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const prefix = 8 + (major === 1 ? 2 : 4);
  header = header.padEnd(Math.ceil((prefix + header.length + 1) / 64) * 64 - prefix - 1, ' ') + '\n';
  const out = new Uint8Array(prefix + header.length + values.length * bytes);
  const v = new DataView(out.buffer);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  if (major === 1) v.setUint16(8, header.length, true);
  else v.setUint32(8, header.length, true);
  out.set(new TextEncoder().encode(header), prefix);
  let p = prefix + header.length;
  for (let i = 0; i < values.length; i++, p += bytes) {
    const x = values[i]!;
    if (descr === '<f4') v.setFloat32(p, x, true);
    else if (descr === '<f8') v.setFloat64(p, x, true);
    else if (descr === '|i1') v.setInt8(p, x);
    else if (descr === '|u1') v.setUint8(p, x);
    else if (descr === '<i4') v.setInt32(p, x, true);
    else v.setBigInt64(p, BigInt(x), true);
  }
  return out;
}

/**
 * A zip archive of `entries`, each stored (method 0) or deflated (method 8). With `zip64`, the
 * central directory keeps sizes and offsets only in zip64 extra fields and the end record points
 * to a zip64 end record, as archives over 4 GiB must.
 */
export function encodeZip(entries: { name: string; data: Uint8Array; deflate: boolean }[], zip64 = false): Uint8Array {
  const U32 = 0xffffffff;
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = new TextEncoder().encode(e.name);
    const body = e.deflate ? new Uint8Array(deflateRawSync(e.data)) : e.data;
    const crc = crc32(e.data);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, e.deflate ? 8 : 0, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, e.data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const extraLength = zip64 ? 4 + 24 : 0;
    const central = new Uint8Array(46 + name.length + extraLength);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 45, true);
    cv.setUint16(6, 45, true);
    cv.setUint16(10, e.deflate ? 8 : 0, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, zip64 ? U32 : body.length, true);
    cv.setUint32(24, zip64 ? U32 : e.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, extraLength, true);
    cv.setUint32(42, zip64 ? U32 : offset, true);
    central.set(name, 46);
    if (zip64) {
      const x = 46 + name.length;
      cv.setUint16(x, 0x0001, true);
      cv.setUint16(x + 2, 24, true);
      cv.setBigUint64(x + 4, BigInt(e.data.length), true);
      cv.setBigUint64(x + 12, BigInt(body.length), true);
      cv.setBigUint64(x + 20, BigInt(offset), true);
    }
    locals.push(local, body);
    centrals.push(central);
    offset += local.length + body.length;
  }
  const cdSize = centrals.reduce((n, c) => n + c.length, 0);
  const tail: Uint8Array[] = [];
  if (zip64) {
    const record = new Uint8Array(56 + 20);
    const rv = new DataView(record.buffer);
    rv.setUint32(0, 0x06064b50, true);
    rv.setBigUint64(4, 44n, true);
    rv.setBigUint64(24, BigInt(entries.length), true);
    rv.setBigUint64(32, BigInt(entries.length), true);
    rv.setBigUint64(40, BigInt(cdSize), true);
    rv.setBigUint64(48, BigInt(offset), true);
    rv.setUint32(56, 0x07064b50, true);
    rv.setBigUint64(56 + 8, BigInt(offset + cdSize), true);
    rv.setUint32(56 + 16, 1, true);
    tail.push(record);
  }
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, zip64 ? 0xffff : entries.length, true);
  ev.setUint16(10, zip64 ? 0xffff : entries.length, true);
  ev.setUint32(12, zip64 ? U32 : cdSize, true);
  ev.setUint32(16, zip64 ? U32 : offset, true);
  return concatBytes([...locals, ...centrals, ...tail, eocd]);
}

/**
 * A one-entry zip of raw-deflate `body` whose headers declare `declaredSize` uncompressed bytes
 * (CRC 0): the shape of decompression bombs and lying archives.
 */
export function deflatedZipDeclaring(name: string, body: Uint8Array, declaredSize: number): Uint8Array {
  const n = new TextEncoder().encode(name);
  const local = new Uint8Array(30 + n.length);
  const lv = new DataView(local.buffer);
  lv.setUint32(0, 0x04034b50, true);
  lv.setUint16(4, 20, true);
  lv.setUint16(8, 8, true);
  lv.setUint32(18, body.length, true);
  lv.setUint32(22, declaredSize >>> 0, true);
  lv.setUint16(26, n.length, true);
  local.set(n, 30);
  const central = new Uint8Array(46 + n.length);
  const cv = new DataView(central.buffer);
  cv.setUint32(0, 0x02014b50, true);
  cv.setUint16(10, 8, true);
  cv.setUint32(20, body.length, true);
  cv.setUint32(24, declaredSize >>> 0, true);
  cv.setUint16(28, n.length, true);
  central.set(n, 46);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, 1, true);
  ev.setUint16(10, 1, true);
  ev.setUint32(12, central.length, true);
  ev.setUint32(16, local.length + body.length, true);
  const out = new Uint8Array(local.length + body.length + central.length + eocd.length);
  out.set(local);
  out.set(body, local.length);
  out.set(central, local.length + body.length);
  out.set(eocd, local.length + body.length + central.length);
  return out;
}

/** A CIFAR-10 binary batch: per record, the label byte then 3072 pixel bytes. */
export function encodeCifarBatch(labels: number[], pixels: (record: number, k: number) => number): Uint8Array {
  const out = new Uint8Array(labels.length * 3073);
  labels.forEach((label, i) => {
    out[i * 3073] = label;
    for (let k = 0; k < 3072; k++) out[i * 3073 + 1 + k] = pixels(i, k);
  });
  return out;
}

export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

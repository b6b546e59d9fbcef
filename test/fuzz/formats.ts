/**
 * The formats under fuzz, one `FuzzFormat` entry each (see harness.ts for the contract). Writers
 * come from test/data/fixtures.ts (written from the format descriptions) or are defined here;
 * reference decoders here are independent of the library's parsers.
 *
 * To plug in a format (the coordinator: `.sgq` deployed models, checkpoints): add an entry to
 * FORMATS with `valid` (small valid values), `encode` (a writer), `load` (the library's
 * bytes-in parser), `equal`, and where possible `reference`, `fields` and `specials`.
 */
import fc from 'fast-check';
import { crc32 as zlibCrc32, deflateRawSync, gunzipSync, gzipSync, inflateRawSync, constants as Z } from 'node:zlib';
import { isDeepStrictEqual } from 'node:util';
import {
  decodeIdx,
  nodeDecompressors,
  parseCifarBatch,
  parseNpy,
  parseNpz,
  parseTabularFile,
  loadTabular,
  parseIdx,
  type Dataset,
  type IdxArray,
  type NpyArray,
  type TabularDataset,
} from '../../src/data/index.js';
import { decodeSafetensors, type StoredTensor } from '../../src/io/safetensors.js';
import { decodeDeployed } from '../../src/io/deployed-format.js';
import type { DeployedModel } from '../../src/quant/runtime.js';
import { deflatedZipDeclaring, encodeCifarBatch, encodeIdx, encodeNpy, encodeZip } from '../data/fixtures.js';
import { concat, mutateInner, rng, sameNumbers, sameShape, type Field, type FuzzFormat } from './harness.js';

const { gunzip, inflateRaw } = await nodeDecompressors();

/** The cap the fuzzed loaders run under (bombs then cost at most this). */
export const FUZZ_MAX_BYTES = 1 << 20;
const limits = { maxBytes: FUZZ_MAX_BYTES };

/** Deflated zeros, computed once: the body of every bomb (16 MiB in 16 KiB). */
const ZEROS_16M = deflateRawSync(new Uint8Array(16 << 20), { level: 9 });

/** A raw deflate stream of `head` then 16 MiB of zeros (a sync-flushed stream and a fresh one concatenate). */
function bombDeflate(head: Uint8Array): Uint8Array {
  return concat(deflateRawSync(head, { finishFlush: Z.Z_SYNC_FLUSH }), ZEROS_16M);
}

/** A gzip member around a raw deflate stream, with the given trailer. */
function gzipMember(deflated: Uint8Array, crc: number, isize: number): Uint8Array {
  const trailer = new Uint8Array(8);
  new DataView(trailer.buffer).setUint32(0, crc >>> 0, true);
  new DataView(trailer.buffer).setUint32(4, isize >>> 0, true);
  return concat(Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3), deflated, trailer);
}

// ---------------------------------------------------------------- IDX

type IdxDType = IdxArray['dtype'];
interface IdxModel {
  dtype: IdxDType;
  shape: number[];
  values: number[];
}
const IDX_KINDS: Record<number, [IdxDType, number]> = { 0x08: ['uint8', 1], 0x09: ['int8', 1], 0x0b: ['int16', 2], 0x0c: ['int32', 4], 0x0d: ['float32', 4], 0x0e: ['float64', 8] };

const elementOf = (dtype: string): fc.Arbitrary<number> =>
  ({
    uint8: fc.integer({ min: 0, max: 255 }),
    int8: fc.integer({ min: -128, max: 127 }),
    int16: fc.integer({ min: -32768, max: 32767 }),
    int32: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    float32: fc.float(),
    float64: fc.double(),
  })[dtype]!;

const shapes = (maxRank: number) => fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: maxRank });
const withValues = <T extends { shape: number[] }>(base: fc.Arbitrary<T>, dtype: (t: T) => string) =>
  base.chain((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    return fc.array(elementOf(dtype(t)), { minLength: n, maxLength: n }).map((values) => ({ ...t, values }));
  });

const idxModel: fc.Arbitrary<IdxModel> = withValues(
  fc.record({ dtype: fc.constantFrom<IdxDType>('uint8', 'int8', 'int16', 'int32', 'float32', 'float64'), shape: shapes(4) }),
  (t) => t.dtype,
);

/** IDX from the format description: 00 00 code rank, big-endian u32 dims, big-endian elements, nothing after. */
function idxReference(b: Uint8Array): IdxModel | undefined {
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0 || !IDX_KINDS[b[2]!] || b[3] === 0) return undefined;
  const [dtype, size] = IDX_KINDS[b[2]!]!;
  const rank = b[3]!;
  if (b.length < 4 + 4 * rank) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const shape = Array.from({ length: rank }, (_, i) => dv.getUint32(4 + 4 * i));
  const n = shape.reduce((a, d) => a * d, 1);
  if (b.length !== 4 + 4 * rank + n * size) return undefined;
  const at = (i: number) => 4 + 4 * rank + i * size;
  const get = { uint8: (i: number) => dv.getUint8(at(i)), int8: (i: number) => dv.getInt8(at(i)), int16: (i: number) => dv.getInt16(at(i)), int32: (i: number) => dv.getInt32(at(i)), float32: (i: number) => dv.getFloat32(at(i)), float64: (i: number) => dv.getFloat64(at(i)) }[dtype];
  return { dtype, shape, values: Array.from({ length: n }, (_, i) => get(i)) };
}

const idxEqual = (r: IdxArray, m: IdxModel) => r.dtype === m.dtype && sameShape(r.shape, m.shape) && sameNumbers(r.data, m.values);
const encodeIdxModel = (m: IdxModel) => encodeIdx(m.dtype, m.shape, m.values);

function idxFields(b: Uint8Array): Field[] {
  const rank = Math.min(b[3] ?? 0, 8);
  return [
    { offset: 2, width: 1, littleEndian: false },
    { offset: 3, width: 1, littleEndian: false },
    ...Array.from({ length: rank }, (_, i): Field => ({ offset: 4 + 4 * i, width: 4, littleEndian: false })),
  ];
}

const idxSpecials = [
  { name: 'wrong dtype code', make: (m: IdxModel, seed: number) => { const b = encodeIdxModel(m); b[2] = [0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x1e][rng(seed)(9)]!; return b; } },
  { name: 'wrong magic', make: (m: IdxModel, seed: number) => { const b = encodeIdxModel(m); const r = rng(seed); b[r(2)] = 1 + r(255); return b; } },
  { name: 'rank 255 over data', make: (m: IdxModel, seed: number) => { const b = concat(encodeIdxModel(m), new Uint8Array(1100).map((_, i) => (seed + i * 7) & 0xff)); b[3] = 255; return b; } },
  {
    name: 'huge dims',
    make: (m: IdxModel, seed: number) => {
      const b = encodeIdxModel(m);
      const r = rng(seed);
      const dv = new DataView(b.buffer);
      const huge = [0xffffffff, 0x80000000, 65536, 2 ** 24 + 1];
      for (let i = 0; i < m.shape.length; i++) if (r(2)) dv.setUint32(4 + 4 * i, huge[r(huge.length)]!);
      return b;
    },
  },
];

const idx: FuzzFormat<IdxModel, IdxArray> = {
  name: 'idx',
  file: 'fuzz-images-idx3-ubyte',
  valid: idxModel,
  encode: encodeIdxModel,
  load: (b, f) => parseIdx(b, f),
  equal: idxEqual,
  reference: idxReference,
  fields: idxFields,
  specials: idxSpecials,
};

// ---------------------------------------------------------------- IDX, gzipped

const idxGz: FuzzFormat<IdxModel, IdxArray> = {
  name: 'idx.gz',
  file: 'fuzz-images-idx3-ubyte.gz',
  valid: idxModel,
  encode: (m) => gzipSync(encodeIdxModel(m)),
  load: (b, f) => decodeIdx(b, f, gunzip, limits),
  equal: idxEqual,
  reference: (b) => {
    if (!(b[0] === 0x1f && b[1] === 0x8b)) return idxReference(b);
    try {
      return idxReference(gunzipSync(b, { maxOutputLength: FUZZ_MAX_BYTES }));
    } catch {
      return undefined;
    }
  },
  fields: (b) => [
    { offset: b.length - 4, width: 4, littleEndian: true }, // ISIZE
    { offset: b.length - 8, width: 4, littleEndian: true }, // CRC-32
    { offset: 3, width: 1, littleEndian: true }, // FLG
  ],
  specials: [
    { name: 'inner IDX mutation', make: (m, seed) => { const raw = encodeIdxModel(m); return gzipSync(mutateInner(raw, seed, idxFields(raw))); } },
    ...idxSpecials.map((s) => ({ name: `${s.name} (inner)`, make: (m: IdxModel, seed: number) => gzipSync(s.make(m, seed)) })),
    {
      name: 'bomb (header + 16 MiB zeros)',
      make: (m, seed) => {
        const head = encodeIdxModel(m);
        const isize = [head.length, head.length + (16 << 20), 0xffffffff, rng(seed)(2 ** 31)][rng(seed)(4)]!;
        return gzipMember(bombDeflate(head), 0, isize);
      },
    },
    { name: 'forged ISIZE', make: (m, seed) => { const b = gzipSync(encodeIdxModel(m)); new DataView(b.buffer, b.byteOffset).setUint32(b.length - 4, rng(seed)(2 ** 32), true); return b; } },
    { name: 'two gzip members', make: (m, seed) => concat(gzipSync(encodeIdxModel(m)), gzipSync(Uint8Array.from({ length: rng(seed)(64) }, (_, i) => i))) },
  ],
};

// ---------------------------------------------------------------- npy

type Descr = '<f4' | '<f8' | '|i1' | '|u1' | '<i4' | '<i8';
interface NpyModel {
  descr: Descr;
  shape: number[];
  values: number[];
  major: number;
}
const NPY_DTYPE: Record<string, NpyArray['dtype']> = { f4: 'float32', f8: 'float64', i1: 'int8', u1: 'uint8', b1: 'uint8', i4: 'int32', i8: 'int32' };
const NPY_SIZE: Record<string, number> = { f4: 4, f8: 8, i1: 1, u1: 1, b1: 1, i4: 4, i8: 8 };
const DESCR_ELEMENT: Record<Descr, string> = { '<f4': 'float32', '<f8': 'float64', '|i1': 'int8', '|u1': 'uint8', '<i4': 'int32', '<i8': 'int32' };

const npyModel: fc.Arbitrary<NpyModel> = withValues(
  fc.record({ descr: fc.constantFrom<Descr>('<f4', '<f8', '|i1', '|u1', '<i4', '<i8'), shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }), major: fc.constantFrom(1, 2) }),
  (t) => DESCR_ELEMENT[t.descr],
);

const encodeNpyModel = (m: NpyModel) => encodeNpy(m.descr, m.shape, m.values, m.major);

/**
 * .npy from the format description: the header is a Python dict literal; converted to JSON
 * (quotes, True/False, tuples) and parsed. Little-endian only; int64 must fit int32 (the
 * library's documented narrowing).
 */
function npyReference(b: Uint8Array): NpyModel | undefined {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (b.length < 10 || magic.some((x, i) => b[i] !== x) || b[6]! < 1 || b[6]! > 3) return undefined;
  const major = b[6]!;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (b.length < 8 + lenBytes) return undefined;
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = 8 + lenBytes + hlen;
  if (b.length < start) return undefined;
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(b.subarray(8 + lenBytes, start));
  let dict: { descr?: unknown; fortran_order?: unknown; shape?: unknown };
  try {
    const json = text
      .trim()
      .replace(/'/g, '"')
      .replace(/\bTrue\b/g, 'true')
      .replace(/\bFalse\b/g, 'false')
      .replace(/(\d)L\b/g, '$1') // Python 2 longs, as old NumPy wrote shapes
      .replace(/\(/g, '[')
      .replace(/\)/g, ']')
      .replace(/,\s*([\]}])/g, '$1');
    dict = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof dict !== 'object' || dict === null || Object.keys(dict).sort().join() !== 'descr,fortran_order,shape') return undefined;
  const { descr, fortran_order: fortran, shape } = dict;
  if (typeof descr !== 'string' || typeof fortran !== 'boolean' || !Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return undefined;
  const code = descr.slice(1);
  const order = descr[0];
  if (!(code in NPY_SIZE) || !(order === '<' || order === '|' || order === '=' || (order === '>' && NPY_SIZE[code] === 1))) return undefined;
  if (fortran && shape.length > 1) return undefined;
  const n = shape.reduce((a: number, d: number) => a * d, 1);
  const size = NPY_SIZE[code]!;
  if (b.length !== start + n * size) return undefined;
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = start + i * size;
    const v = { f4: () => dv.getFloat32(p, true), f8: () => dv.getFloat64(p, true), i1: () => dv.getInt8(p), u1: () => dv.getUint8(p), b1: () => dv.getUint8(p), i4: () => dv.getInt32(p, true), i8: () => Number(dv.getBigInt64(p, true)) }[code]!();
    if (code === 'i8' && (v > 2 ** 31 - 1 || v < -(2 ** 31))) return undefined;
    values.push(v);
  }
  // A descr outside the writer's set is recorded by its dtype (what the equality compares).
  return { descr: ({ float32: '<f4', float64: '<f8', int8: '|i1', uint8: '|u1', int32: code === 'i8' ? '<i8' : '<i4' } as const)[NPY_DTYPE[code]!], shape, values, major };
}

const npyEqual = (r: NpyArray, m: NpyModel) => r.dtype === NPY_DTYPE[m.descr.slice(1)] && sameShape(r.shape, m.shape) && sameNumbers(r.data, m.values);

/** An .npy file with the given header text (padded to 64 bytes like NumPy's) and payload. */
function npyWithHeader(header: string, payload: Uint8Array, major = 1): Uint8Array {
  const prefix = major === 1 ? 10 : 12;
  const padded = header.padEnd(Math.ceil((prefix + header.length + 1) / 64) * 64 - prefix - 1, ' ') + '\n';
  const text = new TextEncoder().encode(padded);
  const out = new Uint8Array(prefix + text.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  if (major === 1) new DataView(out.buffer).setUint16(8, text.length & 0xffff, true);
  else new DataView(out.buffer).setUint32(8, text.length, true);
  out.set(text, prefix);
  return concat(out, payload);
}

const HEADER_EDITS: ((m: NpyModel, r: (n: number) => number) => string)[] = [
  (m) => `{'descr': '${['>f4', '<f2', '|O', '<U5', '<c8', '|b1', '=f4', '|u1', '<i8', '>u1', '<f4', ''][m.values.length % 12]}', 'fortran_order': False, 'shape': (${m.shape.join(', ')}${m.shape.length === 1 ? ',' : ''}), }`,
  (m) => `{'descr': '${m.descr}', 'fortran_order': True, 'shape': (${m.shape.join(', ')}${m.shape.length === 1 ? ',' : ''}), }`,
  (m, r) => `{'descr': '${m.descr}', 'fortran_order': False, 'shape': (${['4294967295, 4294967295', '99999999999999999999,', '-1,', '1e3,', '0x10,', '2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2', ',', '3L,', ''][r(9)]}), }`,
  (m) => `{'descr': '${m.descr}', 'shape': (${m.shape.join(', ')}${m.shape.length === 1 ? ',' : ''}), }`,
  (m) => `{'descr': '${m.descr}', 'descr': '<f8', 'fortran_order': False, 'shape': (${m.shape.join(', ')}${m.shape.length === 1 ? ',' : ''}), }`,
  (m) => `{'shape': (${m.shape.join(', ')}${m.shape.length === 1 ? ',' : ''}), 'fortran_order': False, 'descr': '${m.descr}'}`,
  (m) => `{"descr": "${m.descr}", "fortran_order": False, "shape": (${m.shape.join(', ')}${m.shape.length === 1 ? ',' : ''})} junk`,
  (m, r) => `{'descr': '${m.descr}', 'fortran_order': False, 'shape': (${m.shape.join(', ')}${m.shape.length === 1 ? ',' : ''}), }`.slice(0, r(60)),
];

const npySpecials = [
  {
    name: 'header rewritten',
    make: (m: NpyModel, seed: number) => {
      const r = rng(seed);
      const raw = encodeNpyModel(m);
      const start = raw[6] === 1 ? 10 + raw[8]! + raw[9]! * 256 : 12 + new DataView(raw.buffer).getUint32(8, true);
      return npyWithHeader(HEADER_EDITS[r(HEADER_EDITS.length)]!(m, r), raw.subarray(start), m.major);
    },
  },
  { name: 'huge header length', make: (m: NpyModel, seed: number) => { const b = encodeNpyModel(m); b[6] = 2; new DataView(b.buffer).setUint32(8, [0xffffffff, 0x7fffffff, b.length][rng(seed)(3)]!, true); return b; } },
  { name: 'wrong version', make: (m: NpyModel, seed: number) => { const b = encodeNpyModel(m); b[6] = [0, 4, 255, 3][rng(seed)(4)]!; return b; } },
];

const npyFields = (b: Uint8Array): Field[] => [
  { offset: 6, width: 1, littleEndian: true },
  b[6] === 1 ? { offset: 8, width: 2, littleEndian: true } : { offset: 8, width: 4, littleEndian: true },
];

const npy: FuzzFormat<NpyModel, NpyArray> = {
  name: 'npy',
  file: 'fuzz.npy',
  valid: npyModel,
  encode: encodeNpyModel,
  load: (b, f) => parseNpy(b, f),
  equal: npyEqual,
  reference: npyReference,
  fields: npyFields,
  specials: npySpecials,
};

// ---------------------------------------------------------------- npz

interface NpzModel {
  entries: { name: string; npy: NpyModel; deflate: boolean }[];
  zip64: boolean;
}

const npzModel: fc.Arbitrary<NpzModel> = fc.record({
  entries: fc.uniqueArray(fc.record({ name: fc.constantFrom('x', 'y', 'x_train', 'labels', 'a.b'), npy: npyModel, deflate: fc.boolean() }), { minLength: 1, maxLength: 3, selector: (e) => e.name }),
  zip64: fc.boolean(),
});

const encodeNpzModel = (m: NpzModel) => encodeZip(m.entries.map((e) => ({ name: `${e.name}.npy`, data: encodeNpyModel(e.npy), deflate: e.deflate })), m.zip64);

/**
 * .npz by a path independent of the library's zip reader: walks the local headers from the start
 * (not the central directory), inflates with zlib, checks zlib's CRC-32 and the declared size.
 */
function npzReference(b: Uint8Array): NpzModel | undefined {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const entries: NpzModel['entries'] = [];
  let p = 0;
  while (p + 30 <= b.length && dv.getUint32(p, true) === 0x04034b50) {
    const flags = dv.getUint16(p + 6, true);
    const method = dv.getUint16(p + 8, true);
    const crc = dv.getUint32(p + 14, true);
    const csize = dv.getUint32(p + 18, true);
    const usize = dv.getUint32(p + 22, true);
    const nlen = dv.getUint16(p + 26, true);
    const elen = dv.getUint16(p + 28, true);
    const name = new TextDecoder().decode(b.subarray(p + 30, p + 30 + nlen));
    const start = p + 30 + nlen + elen;
    if (flags & 1 || start + csize > b.length || (method !== 0 && method !== 8)) return undefined;
    let data: Uint8Array;
    try {
      data = method === 0 ? b.subarray(start, start + csize) : inflateRawSync(b.subarray(start, start + csize), { maxOutputLength: FUZZ_MAX_BYTES });
    } catch {
      return undefined;
    }
    if (data.length !== usize || zlibCrc32(data) !== crc) return undefined;
    if (name.endsWith('.npy')) {
      const npy = npyReference(data);
      if (!npy) return undefined;
      entries.push({ name: name.slice(0, -4), npy, deflate: method === 8 });
    }
    p = start + csize;
  }
  return entries.length ? { entries, zip64: false } : undefined;
}

const npzEqual = (r: Map<string, NpyArray>, m: NpzModel) => r.size === m.entries.length && m.entries.every((e) => r.has(e.name) && npyEqual(r.get(e.name)!, e.npy));

/** Offsets of the numeric fields of a zip written by encodeZip: end record, central and local headers. */
function zipFields(b: Uint8Array): Field[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const e = b.length - 22;
  if (e < 0) return [];
  const fields: Field[] = [8, 10, 12, 16, 20].map((o) => ({ offset: e + o, width: (o >= 12 && o < 20 ? 4 : 2) as 2 | 4, littleEndian: true }));
  let p = dv.getUint32(e + 16, true);
  if (p === 0xffffffff) return fields;
  for (let i = 0; i < dv.getUint16(e + 10, true) && p + 46 <= e; i++) {
    for (const [o, w] of [[10, 2], [16, 4], [20, 4], [24, 4], [28, 2], [30, 2], [42, 4]] as const) fields.push({ offset: p + o, width: w, littleEndian: true });
    const local = dv.getUint32(p + 42, true);
    if (local + 30 <= b.length) for (const [o, w] of [[8, 2], [18, 4], [22, 4], [26, 2], [28, 2]] as const) fields.push({ offset: local + o, width: w, littleEndian: true });
    p += 46 + dv.getUint16(p + 28, true) + dv.getUint16(p + 30, true) + dv.getUint16(p + 32, true);
  }
  return fields;
}

/** A one-entry zip whose directory declares `size` bytes for a bomb stream. */
const zipBomb = (npyHead: Uint8Array, size: number) => deflatedZipDeclaring('x.npy', bombDeflate(npyHead), size);

const npz: FuzzFormat<NpzModel, Map<string, NpyArray>> = {
  name: 'npz',
  file: 'fuzz.npz',
  valid: npzModel,
  encode: encodeNpzModel,
  load: (b, f) => parseNpz(b, f, inflateRaw, limits),
  equal: npzEqual,
  reference: npzReference,
  fields: zipFields,
  specials: [
    {
      name: 'inner npy mutation',
      make: (m, seed) => {
        const r = rng(seed);
        const k = r(m.entries.length);
        return encodeZip(m.entries.map((e, i) => { const data = encodeNpyModel(e.npy); return { name: `${e.name}.npy`, data: i === k ? mutateInner(data, seed, npyFields(data)) : data, deflate: e.deflate }; }), m.zip64);
      },
    },
    ...npySpecials.map((s) => ({ name: `${s.name} (inner)`, make: (m: NpzModel, seed: number) => encodeZip(m.entries.map((e) => ({ name: `${e.name}.npy`, data: s.make(e.npy, seed), deflate: e.deflate })), m.zip64) })),
    {
      name: 'bomb (npy header + 16 MiB zeros)',
      make: (m, seed) => {
        const head = encodeNpyModel(m.entries[0]!.npy);
        return zipBomb(head, [head.length, head.length + (16 << 20), 0xfffffff0, rng(seed)(2 ** 31)][rng(seed)(4)]!);
      },
    },
    { name: 'duplicate entry', make: (m) => encodeZip([...m.entries, m.entries[0]!].map((e) => ({ name: `${e.name}.npy`, data: encodeNpyModel(e.npy), deflate: e.deflate })), m.zip64) },
  ],
};

// ---------------------------------------------------------------- CSV (tabular)

interface CsvModel {
  header: string[];
  rows: string[][];
}

const csvModel: fc.Arbitrary<CsvModel> = fc
  .record({
    kinds: fc.array(fc.constantFrom('int', 'float', 'word'), { minLength: 1, maxLength: 3 }),
    n: fc.integer({ min: 4, max: 12 }),
    seed: fc.nat(),
  })
  .map(({ kinds, n, seed }) => {
    const r = rng(seed + 1);
    const cell = (k: string) => (k === 'int' ? String(r(100) - 50) : k === 'float' ? (r(10000) / 100 - 50).toFixed(2) : ['red', 'green', 'blue', 'NA', 'x y'][r(5)]!);
    // A first column with distinct values: the file always has a feature left after constant columns go.
    const rows = Array.from({ length: n }, (_, i) => [String(i * 3 - 7), ...kinds.map(cell), i % 2 ? 'yes' : 'no']);
    return { header: ['id', ...kinds.map((k, i) => `${k}${i}`), 'label'], rows };
  });

const encodeCsv = (m: CsvModel) => new TextEncoder().encode([m.header, ...m.rows].map((r) => r.join(',')).join('\n') + '\n');
const csvOptions = { label: 'label', maxBytes: FUZZ_MAX_BYTES };

/**
 * Records of CSV text by a separate RFC 4180 reading (quotes, CRLF/CR/LF, blank lines skipped;
 * the delimiter: ',' if the first line has one, else ';', else tab, as documented).
 */
function csvRecords(text: string): string[][] | undefined {
  const first = text.split('\n', 1)[0]!;
  const delimiter = first.includes(',') ? ',' : first.includes(';') ? ';' : first.includes('\t') ? '\t' : ',';
  const records: string[][] = [];
  let chars: string[] = [];
  let fields: string[] = [];
  let quoted = false;
  let wasQuoted = false;
  let nonBlank = 0; // non-whitespace characters in the field
  const endField = () => {
    const field = chars.join('');
    fields.push(wasQuoted ? field : field.trim());
    chars = [];
    wasQuoted = false;
    nonBlank = 0;
  };
  const endRecord = () => {
    endField();
    if (!(fields.length === 1 && fields[0] === '')) records.push(fields);
    fields = [];
  };
  const add = (c: string) => {
    chars.push(c);
    if (/\S/.test(c)) nonBlank++;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { add('"'); i++; }
      else if (c === '"') quoted = false;
      else add(c);
    } else if (c === '"' && nonBlank === 0) { quoted = true; wasQuoted = true; chars = []; }
    else if (c === delimiter) endField();
    else if (c === '\n' || c === '\r') { if (c === '\r' && text[i + 1] === '\n') i++; endRecord(); }
    else add(c);
  }
  if (quoted) return undefined;
  if (chars.length || fields.length) endRecord();
  return records;
}

/** What a faithful encoding of `bytes` must satisfy (there is no second encoder to compare with). */
function csvConsistent(d: TabularDataset, bytes: Uint8Array): boolean {
  const text = new TextDecoder().decode(bytes);
  const records = csvRecords(text.startsWith('\ufeff') ? text.slice(1) : text);
  if (!records || records.length < 3 || !records.every((r) => r.length === records[0]!.length)) return false;
  const width = d.columns.length;
  if (d.train.rows + d.test.rows !== records.length - 1) return false;
  let next = 0;
  for (const g of d.groups) {
    if (g.start !== next || g.end <= g.start) return false;
    next = g.end;
  }
  if (next !== width) return false;
  for (const s of [d.train, d.test]) {
    if (s.x.length !== s.rows * width || s.y.length !== s.rows) return false;
    if (!s.x.every(Number.isFinite) || !s.y.every((v) => v === 0 || v === 1)) return false;
    for (const g of d.groups.filter((g) => g.kind === 'categorical')) {
      for (let row = 0; row < s.rows; row++) {
        let sum = 0;
        for (let c = g.start; c < g.end; c++) sum += s.x[row * width + c]!;
        if (sum !== 1) return false;
      }
    }
  }
  return true;
}

const csv: FuzzFormat<CsvModel, TabularDataset> = {
  name: 'csv',
  file: 'fuzz.csv',
  valid: csvModel,
  encode: encodeCsv,
  load: (b, f) => parseTabularFile(b, f, csvOptions),
  // The original's result is the library's own on the valid file: there is no second encoder.
  equal: (d, m) => isDeepStrictEqual(d, loadTabular(new TextDecoder().decode(encodeCsv(m)), csvOptions)),
  consistent: csvConsistent,
  specials: [
    {
      name: 'CSV syntax inserted',
      make: (m, seed) => {
        const r = rng(seed);
        const text = new TextDecoder().decode(encodeCsv(m));
        const at = r(text.length + 1);
        const bits = ['"', '""', '\n', '\r', '\r\n', ',', ';', '\t', '\ufeff', 'Infinity', '-1e999', 'NaN', '?', '', '\u0000', '"a\nb"'];
        return new TextEncoder().encode(text.slice(0, at) + bits[r(bits.length)]! + text.slice(at));
      },
    },
    { name: 'invalid UTF-8', make: (m, seed) => { const b = encodeCsv(m); const out = b.slice(); out[rng(seed)(b.length)] = 0xc0 | rng(seed + 1)(64); return out; } },
    { name: 'many columns', make: (m, seed) => new TextEncoder().encode(`${m.header.join(',')}${',c'.repeat(50 + rng(seed)(2000))}\n${m.rows.map((r) => r.join(',')).join('\n')}\n`) },
    { name: 'quotes inside an unquoted cell', make: (m, seed) => { const rows = m.rows.map((r) => [...r]); rows[0]![0] = 'x"'.repeat(50000 + rng(seed)(50000)); return encodeCsv({ header: m.header, rows }); } },
    { name: 'long cell', make: (m, seed) => { const rows = m.rows.map((r) => [...r]); rows[0]![0] = 'z'.repeat(1000 + rng(seed)(100000)); return encodeCsv({ header: m.header, rows }); } },
  ],
};

// ---------------------------------------------------------------- CIFAR-10 binary

interface CifarModel {
  labels: number[];
  seed: number;
}
const cifarPixel = (seed: number, record: number, k: number) => (seed * 31 + record * 131 + k * 7 + ((k * k) >> 3)) & 0xff;
const cifarModel = fc.record({ labels: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 3 }), seed: fc.nat({ max: 255 }) });
const encodeCifar = (m: CifarModel) => encodeCifarBatch(m.labels, (i, k) => cifarPixel(m.seed, i, k));

const cifar: FuzzFormat<CifarModel | { labels: number[]; pixels: Uint8Array }, Dataset> = {
  name: 'cifar10',
  file: 'fuzz_batch.bin',
  valid: cifarModel,
  encode: (m) => ('pixels' in m ? m.pixels : encodeCifar(m)),
  load: (b, f) => parseCifarBatch(b, f),
  equal: (d, m) => {
    const bytes = 'pixels' in m ? m.pixels : encodeCifar(m);
    if (d.length !== m.labels.length || d.numClasses !== 10 || !sameShape(d.itemShape, [3, 32, 32])) return false;
    for (let i = 0; i < d.length; i++) {
      const { x, y } = d.item(i);
      if (y !== m.labels[i] || x.length !== 3072) return false;
      for (let k = 0; k < 3072; k++) if (x[k] !== Math.fround(bytes[i * 3073 + 1 + k]! / 255)) return false;
    }
    return true;
  },
  // From the format description: whole 3073-byte records, label bytes 0..9.
  reference: (b) => {
    if (b.length === 0 || b.length % 3073) return undefined;
    const labels = Array.from({ length: b.length / 3073 }, (_, i) => b[i * 3073]!);
    return labels.every((l) => l < 10) ? { labels, pixels: b } : undefined;
  },
  specials: [
    { name: 'label out of range', make: (m, seed) => { const b = cifar.encode(m); b[3073 * rng(seed)(m.labels.length)] = 10 + rng(seed + 1)(246); return b; } },
    { name: 'partial record', make: (m, seed) => concat(cifar.encode(m), new Uint8Array(1 + rng(seed)(3072))) },
  ],
};

// ---------------------------------------------------------------- safetensors

const ST_DTYPES = { F32: [4, 'float32'], F64: [8, 'float64'], I32: [4, 'int32'], I8: [1, 'int8'], U8: [1, 'uint8'] } as const;
type StDType = keyof typeof ST_DTYPES;
interface StModel {
  tensors: { name: string; dtype: StDType; shape: number[]; values: number[] }[];
  metadata: Record<string, string>;
}
const stModel: fc.Arbitrary<StModel> = fc.record({
  tensors: fc.uniqueArray(
    withValues(fc.record({ name: fc.constantFrom('w', 'b', 'layer.0.weight', '1', '__proto__'), dtype: fc.constantFrom<StDType>('F32', 'F64', 'I32', 'I8', 'U8'), shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }) }), (t) => ST_DTYPES[t.dtype][1]),
    { minLength: 1, maxLength: 3, selector: (t) => t.name },
  ),
  metadata: fc.dictionary(fc.constantFrom('format', 'epoch'), fc.string({ maxLength: 8 }), { maxKeys: 2 }),
});

/** safetensors from its description: u64 LE header length, JSON header padded with spaces to 8, then the data. */
function encodeSt(m: StModel, edit: (header: Record<string, unknown>) => unknown = (h) => h): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(m.metadata).length) header.__metadata__ = m.metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of m.tensors) {
    const [size, dtype] = ST_DTYPES[t.dtype];
    const data = new Uint8Array(t.values.length * size);
    const dv = new DataView(data.buffer);
    t.values.forEach((v, i) => ({ float32: () => dv.setFloat32(i * 4, v, true), float64: () => dv.setFloat64(i * 8, v, true), int32: () => dv.setInt32(i * 4, v, true), int8: () => dv.setInt8(i, v), uint8: () => dv.setUint8(i, v) })[dtype]());
    Object.defineProperty(header, t.name, { value: { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + data.length] }, enumerable: true, writable: true, configurable: true });
    chunks.push(data);
    offset += data.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(edit(header)));
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(padded.length), true);
  return concat(len, padded, ...chunks);
}

function stReference(b: Uint8Array): StModel | undefined {
  if (b.length < 8) return undefined;
  const n = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(b.length - 8)) return undefined;
  let header: any;
  try {
    header = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + Number(n))));
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return undefined;
  const base = 8 + Number(n);
  const metadata = header.__metadata__ ?? {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata) || Object.values(metadata).some((v) => typeof v !== 'string')) return undefined;
  const tensors: StModel['tensors'] = [];
  const spans: [number, number][] = [];
  for (const [name, h] of Object.entries<any>(header)) {
    if (name === '__metadata__') continue;
    if (typeof h !== 'object' || h === null || !Object.hasOwn(ST_DTYPES, h.dtype) || !Array.isArray(h.shape) || !Array.isArray(h.data_offsets) || h.data_offsets.length !== 2) return undefined;
    const [size, dtype] = ST_DTYPES[h.dtype as StDType];
    const [s, e] = h.data_offsets;
    if (!h.shape.every((d: unknown) => Number.isSafeInteger(d) && (d as number) >= 0) || !Number.isSafeInteger(s) || !Number.isSafeInteger(e) || s < 0 || e < s) return undefined;
    const count = h.shape.reduce((a: number, d: number) => a * d, 1);
    if (e - s !== count * size || base + e > b.length) return undefined;
    const dv = new DataView(b.buffer, b.byteOffset + base + s, e - s);
    const values = Array.from({ length: count }, (_, i) => ({ float32: () => dv.getFloat32(i * 4, true), float64: () => dv.getFloat64(i * 8, true), int32: () => dv.getInt32(i * 4, true), int8: () => dv.getInt8(i), uint8: () => dv.getUint8(i) })[dtype]());
    tensors.push({ name, dtype: h.dtype, shape: h.shape, values });
    spans.push([s, e]);
  }
  spans.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let at = 0;
  for (const [s, e] of spans) {
    if (s !== at) return undefined;
    at = e;
  }
  if (base + at !== b.length) return undefined;
  return { tensors, metadata };
}

const stEqual = (r: { tensors: Map<string, StoredTensor>; metadata: Record<string, string> }, m: StModel) =>
  r.tensors.size === m.tensors.length &&
  isDeepStrictEqual({ ...r.metadata }, { ...m.metadata }) &&
  m.tensors.every((t) => {
    const got = r.tensors.get(t.name);
    return got !== undefined && got.dtype === ST_DTYPES[t.dtype][1] && sameShape(got.shape, t.shape) && sameNumbers(got.values, t.values);
  });

const ST_EDITS: ((h: any, r: (n: number) => number) => unknown)[] = [
  (h) => Object.fromEntries(Object.entries<any>(h).map(([k, v]) => [k, k === '__metadata__' ? v : { ...v, shape: [4294967295, 4294967295] }])),
  (h) => Object.fromEntries(Object.entries<any>(h).map(([k, v]) => [k, k === '__metadata__' ? v : { ...v, data_offsets: [0, v.data_offsets[1]] }])),
  (h, r) => Object.fromEntries(Object.entries<any>(h).map(([k, v]) => [k, k === '__metadata__' ? v : { ...v, dtype: ['BF16', 'F16', 'I64', 'toString', 42, null][r(6)] }])),
  (h, r) => Object.fromEntries(Object.entries<any>(h).map(([k, v]) => [k, k === '__metadata__' ? v : { ...v, data_offsets: [[-8, 0], ['0', '4'], [0.5, 4.5], [2 ** 60, 2 ** 60 + 4], [4], null, 'x'][r(7)] }])),
  (h, r) => Object.fromEntries(Object.entries<any>(h).map(([k, v]) => [k, k === '__metadata__' ? v : { ...v, shape: [[-1], [1.5], 'abc', null, [2 ** 53, 2 ** 53]][r(5)] }])),
  (_h, r) => [[], null, 1, 'x', true][r(5)],
  (h) => ({ ...h, __metadata__: { epoch: 3 } }),
  (h) => Object.fromEntries(Object.entries<any>(h).map(([k, v]) => [k, k === '__metadata__' ? v : null])),
];

const safetensors: FuzzFormat<StModel, ReturnType<typeof decodeSafetensors>> = {
  name: 'safetensors',
  file: 'fuzz.safetensors',
  valid: stModel,
  encode: (m) => encodeSt(m),
  load: (b, f) => decodeSafetensors(b, f),
  equal: stEqual,
  reference: stReference,
  isError: (e) => e instanceof Error && /: not a valid safetensors file: /.test(e.message),
  fields: () => [{ offset: 0, width: 8, littleEndian: true }],
  specials: [
    { name: 'header rewritten', make: (m, seed) => { const r = rng(seed); return encodeSt(m, (h) => ST_EDITS[r(ST_EDITS.length)]!(h, r)); } },
    { name: 'inner data appended', make: (m, seed) => concat(encodeSt(m), new Uint8Array(1 + rng(seed)(16))) },
  ],
};


// ---------------------------------------------------------------- .sgq deployed models

const SGQ_KINDS = { u32: [4, 'getUint32', 'setUint32'], i32: [4, 'getInt32', 'setInt32'], i8: [1, 'getInt8', 'setInt8'], f32: [4, 'getFloat32', 'setFloat32'] } as const;
type SgqKind = keyof typeof SGQ_KINDS;
interface SgqArray {
  kind: SgqKind;
  values: number[];
}
/** A stage: its plain fields, its arrays, and (residual blocks) its nested stage lists; stored in that key order. */
interface SgqStage {
  fields: Record<string, unknown>;
  arrays: Record<string, SgqArray>;
  body?: SgqStage[];
  shortcut?: SgqStage[];
}
interface SgqModel {
  inputShape: number[];
  stages: SgqStage[];
}
const SGQ_NESTED = ['body', 'shortcut'] as const;

/**
 * A small valid deployed model from a seed, written from the format's rules (not with the
 * library): convs (float, int8 or binary kernels, epilogue or sign thresholds), ReLU, max-pool,
 * affine, residual blocks (identity or a strided 1x1 shortcut), then global pooling or a flatten
 * and a dense classifier.
 */
function sgqBuild(seed: number): SgqModel {
  const r = rng(seed);
  const words = (c: number) => Math.ceil(c / 32);
  const value = (kind: SgqKind) => (kind === 'u32' ? r(2 ** 32) : kind === 'i32' ? r(2001) - 1000 : kind === 'i8' ? r(256) - 128 : Math.fround((r(4001) - 2000) / 100));
  const arr = (kind: SgqKind, n: number): SgqArray => ({ kind, values: Array.from({ length: n }, () => value(kind)) });
  const out = (h: number, k: number, stride: number, pad: number) => Math.floor((h + 2 * pad - k) / stride) + 1;
  const mat = (op: 'conv' | 'dense', inC: number, outC: number, k: number, stride: number, pad: number): SgqStage => {
    const kernel = (['float', 'int8', 'binary'] as const)[r(3)]!, K = inC * k * k;
    const [wk, wl]: [SgqKind, number] = kernel === 'binary' ? ['u32', op === 'conv' ? outC * k * k * words(inC) : outC * words(inC)] : kernel === 'int8' ? ['i8', outC * K] : ['f32', outC * K];
    const fields = { op, kernel, outC, inC, k: op === 'conv' ? k : 0, stride, pad, inputStep: kernel === 'int8' ? 0.25 : 0 };
    const thresholds = r(4) === 0;
    const arrays: Record<string, SgqArray> = thresholds
      ? { weights: arr(wk, wl), threshold: arr(kernel === 'float' ? 'f32' : 'i32', outC), direction: { kind: 'i8', values: Array.from({ length: outC }, () => r(3) - 1) } }
      : { weights: arr(wk, wl), mul: arr('f32', outC), bias: arr('f32', outC) };
    return { fields, arrays };
  };
  let [c, h, w] = [1 + r(3), 3 + r(5), 3 + r(5)];
  const inputShape = [c, h, w], stages: SgqStage[] = [];
  for (let i = r(4); i > 0; i--) {
    const pick = r(5);
    if (pick === 0) {
      const o = 1 + r(4), k = 1 + 2 * r(2), pad = r(k), stride = 1 + r(2);
      if (out(h, k, stride, pad) < 1 || out(w, k, stride, pad) < 1) continue;
      stages.push(mat('conv', c, o, k, stride, pad));
      [c, h, w] = [o, out(h, k, stride, pad), out(w, k, stride, pad)];
    } else if (pick === 1) stages.push({ fields: { op: 'relu' }, arrays: {} });
    else if (pick === 2 && h >= 2 && w >= 2) {
      stages.push({ fields: { op: 'maxpool', k: 2 }, arrays: {} });
      [h, w] = [Math.floor(h / 2), Math.floor(w / 2)];
    } else if (pick === 3) stages.push({ fields: { op: 'affine' }, arrays: { mul: arr('f32', c), bias: arr('f32', c) } });
    else if (r(2) === 0) stages.push({ fields: { op: 'residual' }, arrays: {}, body: [mat('conv', c, c, 3, 1, 1), { fields: { op: 'relu' }, arrays: {} }], shortcut: [] });
    else {
      const o = 1 + r(4);
      stages.push({ fields: { op: 'residual' }, arrays: {}, body: [mat('conv', c, o, 3, 2, 1)], shortcut: [mat('conv', c, o, 1, 2, 0)] });
      [c, h, w] = [o, out(h, 3, 2, 1), out(w, 3, 2, 1)];
    }
  }
  const flat = r(2) === 0 ? c : c * h * w;
  stages.push({ fields: { op: r(2) === 0 || flat !== c ? 'flatten' : 'gap' }, arrays: {} });
  if (stages[stages.length - 1]!.fields.op === 'flatten' && flat === c && (h > 1 || w > 1)) stages.pop(), stages.push({ fields: { op: 'gap' }, arrays: {} });
  const inputs = stages[stages.length - 1]!.fields.op === 'gap' ? c : c * h * w;
  stages.push(mat('dense', inputs, 1 + r(5), 1, 1, 0));
  return { inputShape, stages };
}
const sgqModel: fc.Arbitrary<SgqModel> = fc.nat().map(sgqBuild);

/** SGQM v3 from its description: magic, version 3, JSON length, JSON padded to 4, arrays padded to 4 (in file order), CRC-32 of all before it. */
function encodeSgq(m: SgqModel, edit: (header: any) => unknown = (h) => h): Uint8Array {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const json = (list: SgqStage[]): unknown[] => list.map((s) => {
    const refs: Record<string, unknown> = {};
    for (const [key, a] of Object.entries(s.arrays)) {
      const [size, , set] = SGQ_KINDS[a.kind];
      const data = new Uint8Array(Math.ceil((a.values.length * size) / 4) * 4);
      const dv = new DataView(data.buffer);
      a.values.forEach((v, i) => (dv[set] as (o: number, v: number, le: boolean) => void).call(dv, i * size, v, true));
      refs[key] = { $array: a.kind, offset, length: a.values.length };
      chunks.push(data);
      offset += data.length;
    }
    const nested: Record<string, unknown> = {};
    for (const key of SGQ_NESTED) if (s[key]) nested[key] = json(s[key]);
    return { ...s.fields, ...refs, ...nested };
  });
  const header = new TextEncoder().encode(JSON.stringify(edit({ inputShape: m.inputShape, stages: json(m.stages) })));
  const prefix = new Uint8Array(12 + Math.ceil(header.length / 4) * 4);
  const dv = new DataView(prefix.buffer);
  dv.setUint32(0, 0x4d514753, true);
  dv.setUint32(4, 3, true);
  dv.setUint32(8, header.length, true);
  prefix.set(header, 12);
  const body = concat(prefix, ...chunks);
  const crc = new Uint8Array(4);
  new DataView(crc.buffer).setUint32(0, zlibCrc32(body), true);
  return concat(body, crc);
}

/** Structure only (magic, version, checksum, JSON, array references back to back): what the bytes say, not whether the shapes fit. */
function sgqReference(b: Uint8Array): SgqModel | undefined {
  if (b.length < 16) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(0, true) !== 0x4d514753 || ![2, 3].includes(dv.getUint32(4, true))) return undefined;
  const n = dv.getUint32(8, true), head = 12 + Math.ceil(n / 4) * 4, end = b.length - 4;
  if (head > end || zlibCrc32(b.subarray(0, end)) !== dv.getUint32(end, true)) return undefined;
  let h: any;
  try {
    h = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(12, 12 + n)));
  } catch {
    return undefined;
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h) || !Array.isArray(h.inputShape) || h.inputShape.length === 0 || !h.inputShape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 1)) return undefined;
  if (!Array.isArray(h.stages) || h.stages.length === 0) return undefined;
  let at = 0;
  const walk = (list: unknown[]): SgqStage[] | undefined => {
    const stages: SgqStage[] = [];
    for (const s of list as any[]) {
      if (typeof s !== 'object' || s === null || Array.isArray(s) || typeof s.op !== 'string') return undefined;
      const stage: SgqStage = { fields: {}, arrays: {} };
      for (const [key, v] of Object.entries<any>(s)) {
        if ((SGQ_NESTED as readonly string[]).includes(key)) {
          if (!Array.isArray(v)) return undefined;
          const inner = walk(v);
          if (!inner) return undefined;
          stage[key as (typeof SGQ_NESTED)[number]] = inner;
          continue;
        }
        if (typeof v !== 'object' || v === null || Array.isArray(v) || !('$array' in v)) {
          stage.fields[key] = v;
          continue;
        }
        if (!Object.hasOwn(SGQ_KINDS, v.$array) || !Number.isSafeInteger(v.length) || v.length < 0 || v.offset !== at) return undefined;
        const [size, get] = SGQ_KINDS[v.$array as SgqKind];
        if (head + at + v.length * size > end) return undefined;
        const view = new DataView(b.buffer, b.byteOffset + head + at, v.length * size);
        stage.arrays[key] = { kind: v.$array, values: Array.from({ length: v.length }, (_, i) => (view[get] as (o: number, le: boolean) => number).call(view, i * size, true)) };
        at += Math.ceil((v.length * size) / 4) * 4;
      }
      stages.push(stage);
    }
    return stages;
  };
  const stages = walk(h.stages);
  return stages && head + at === end ? { inputShape: h.inputShape, stages } : undefined;
}

const SGQ_CTORS = { u32: Uint32Array, i32: Int32Array, i8: Int8Array, f32: Float32Array } as const;
const sgqStagesEqual = (got: unknown[], want: SgqStage[]): boolean =>
  got.length === want.length &&
  want.every((s, i) => {
    const g = got[i] as Record<string, unknown>;
    const keys = [...Object.keys(s.fields), ...Object.keys(s.arrays), ...SGQ_NESTED.filter((k) => s[k])];
    return Object.keys(g).length === keys.length &&
      Object.entries(s.fields).every(([k, v]) => isDeepStrictEqual(g[k], v)) &&
      Object.entries(s.arrays).every(([k, a]) => g[k] instanceof SGQ_CTORS[a.kind] && sameNumbers(g[k] as ArrayLike<number>, a.values)) &&
      SGQ_NESTED.every((k) => !s[k] || (Array.isArray(g[k]) && sgqStagesEqual(g[k] as unknown[], s[k]!)));
  });
const sgqEqual = (r: DeployedModel, m: SgqModel) => sameShape(r.inputShape, m.inputShape) && sgqStagesEqual(r.stages, m.stages);

/** Every stage object of a header, nested ones included. */
const sgqHeaderStages = (list: any): any[] => (Array.isArray(list) ? list.flatMap((s) => [s, ...SGQ_NESTED.flatMap((k) => sgqHeaderStages(s?.[k]))]) : []);
const SGQ_FIELD_VALUES = [0, 1, 2, 3, 5, 64, 65, -1, 2 ** 31, 1e12, 2.5, '3', null, [1], NaN];

const SGQ_EDITS: ((h: any, r: (n: number) => number) => unknown)[] = [
  (h, r) => ({ ...h, stages: h.stages.map((s: any) => Object.fromEntries(Object.entries<any>(s).map(([k, v]) => [k, v?.$array ? { ...v, length: [v.length + 1, 2 ** 40, -1, 0.5, '3'][r(5)] } : v]))) }),
  (h, r) => ({ ...h, stages: h.stages.map((s: any) => Object.fromEntries(Object.entries<any>(s).map(([k, v]) => [k, v?.$array ? { ...v, offset: [v.offset + 4, -4, null][r(3)] } : v]))) }),
  (h, r) => ({ ...h, stages: h.stages.map((s: any) => Object.fromEntries(Object.entries<any>(s).map(([k, v]) => [k, v?.$array ? { ...v, $array: ['constructor', 'toString', 'f64', 7, 'i8', 'f32'][r(6)] } : v]))) }),
  (h, r) => ({ ...h, inputShape: [[], [0], [-1], 'x', [2.5], [1, 2 ** 30, 2 ** 30], [h.inputShape[0] + 1, ...h.inputShape.slice(1)]][r(7)] }),
  (h, r) => ({ ...h, stages: [[], null, 'x', [1]][r(4)] }),
  (_h, r) => [[], null, 1, 'x'][r(4)],
  // Shape fields of any stage (nested too): channel counts, kernel, stride, padding, pool window.
  (h, r) => {
    const all = sgqHeaderStages(h.stages), s = all[r(all.length)];
    s[['outC', 'inC', 'k', 'stride', 'pad', 'kernel', 'inputStep', 'inputRange'][r(8)]!] = SGQ_FIELD_VALUES[r(SGQ_FIELD_VALUES.length)];
    return h;
  },
  // Stage kinds and block structure: another op, a shortcut or body removed or of the wrong type, deep nesting.
  (h, r) => {
    const all = sgqHeaderStages(h.stages), s = all[r(all.length)];
    switch (r(4)) {
      case 0:
        s.op = ['conv', 'dense', 'relu', 'gap', 'flatten', 'maxpool', 'affine', 'residual', 'softmax', 7][r(10)];
        break;
      case 1:
        s[SGQ_NESTED[r(2)]!] = [[], 'x', null, [{ op: 'relu' }], [{ op: 'gap' }]][r(5)];
        break;
      case 2:
        delete s[SGQ_NESTED[r(2)]!];
        break;
      default: {
        let block: any = { op: 'residual', body: [{ op: 'relu' }], shortcut: [] };
        for (let i = r(8); i > 0; i--) block = { op: 'residual', body: [block], shortcut: [] };
        h.stages.splice(r(h.stages.length), 0, block);
      }
    }
    return h;
  },
];

const sgq: FuzzFormat<SgqModel, DeployedModel> = {
  name: 'sgq',
  file: 'fuzz.sgq',
  valid: sgqModel,
  encode: (m) => encodeSgq(m),
  load: (b, f) => decodeDeployed(b, f),
  equal: sgqEqual,
  reference: sgqReference,
  isError: (e) => e instanceof Error && /^fuzz\.sgq: /.test(e.message),
  fields: () => [{ offset: 4, width: 4, littleEndian: true }, { offset: 8, width: 4, littleEndian: true }],
  specials: [
    // A rewritten header with a valid checksum: the field and shape checks, not the CRC, must catch it.
    { name: 'header rewritten, checksum recomputed', make: (m, seed) => { const r = rng(seed); return encodeSgq(m, (h) => SGQ_EDITS[r(SGQ_EDITS.length)]!(h, r)); } },
  ],
};

/** Every format under fuzz. Plug new formats in here. */
export const FORMATS: FuzzFormat[] = [idx, idxGz, npy, npz, csv, cifar, safetensors, sgq];

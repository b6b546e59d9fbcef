/**
 * Tensor compressors, independent of autograd: `packTensor` turns a tensor into a compact
 * payload (one uint8 storage booked as 'saved' memory), `unpackTensor` rebuilds a tensor of the
 * same shape and dtype (booked as 'workspace', the dequantized temporary), `packedByteLength`
 * gives the payload size from the shape alone (the planner uses it), `releasePacked` frees it.
 *
 * @example
 * const p = packTensor(x, { kind: 'quant', bits: 4, groupSize: 256 }, { seed: 1, stream: 0, step: 0 });
 * const xHat = unpackTensor(p); // E[xHat] = x
 * releasePacked(p);
 */
import { kernels } from '../backends/index.js';
import { arena } from '../core/arena.js';
import { isFloat, type DType } from '../core/dtype.js';
import { keep } from '../core/scope.js';
import { fmt, numel } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { divisionDecode, divisionSplit, hfcLayout, lfcLength, type DivisionGeometry } from './division.js';
import { decodeFloat16, encodeFloat16 } from './float16.js';
import {
  assertCodeBits, bitsFor, codeBytes, groupCount, metaBytes, packInts, roundingNoiseEnergy, unpackInts,
  type CodeBits, type FloatArray, type GroupLayout, type MetaPrecision, type NoiseKey,
} from './quantize.js';

/** How one saved tensor is stored. */
export type Encoding =
  /** The tensor itself (a reference; no copy). */
  | { kind: 'keep' }
  /** IEEE half precision, round to nearest even. */
  | { kind: 'fp16' }
  /** Per-group min-max quantization (quantize.ts); `stochastic: false` rounds to nearest; metadata fp16 by default. */
  | { kind: 'quant'; bits: CodeBits; groupSize: number; stochastic?: boolean; metadata?: MetaPrecision }
  /** A 0/1 uint8 mask at 1 bit per element. */
  | { kind: 'mask' }
  /** Non-negative integers at ceil(log2(max + 1)) bits each (max-pool window positions, labels, ids). */
  | { kind: 'index' }
  /** DIVISION: bf16 block-average LFC + per-(sample, channel) quantized HFC, for [N, C, H, W] maps. */
  | { kind: 'division'; block: number; hfcBits: CodeBits; metadata?: MetaPrecision }
  /**
   * Mesa: 8 bits, one (lo, hi) range per head (dim 1 of a 4-D tensor; one range otherwise) given
   * by the session's running estimates, stochastic rounding clamped to [0, 255].
   */
  | { kind: 'mesa'; ranges: readonly number[] }
  /** COMET/SZ error-bounded (comet.ts): |x − x̂| ≤ bound × the tensor's value range, variable size. */
  | { kind: 'comet'; bound: number };

/** A stable name for an encoding (the dedup key and reports use it). */
export function encodingName(e: Encoding): string {
  switch (e.kind) {
    case 'quant': return `int${e.bits}/g${e.groupSize}${e.stochastic === false ? '/nearest' : ''}${e.metadata === 'fp32' ? '/m32' : ''}`;
    case 'division': return `division/p${e.block}/hfc${e.hfcBits}${e.metadata === 'fp32' ? '/m32' : ''}`;
    case 'comet': return `comet/${e.bound}`;
    default: return e.kind;
  }
}

export interface PackedTensor {
  readonly encoding: Encoding;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** The compressed bytes ('saved' memory); null for 'keep'. */
  readonly payload: Tensor | null;
  /** The kept view for 'keep'. */
  readonly kept: Tensor | null;
  /** Bits per value of an 'index' encoding. */
  readonly indexBits: number;
  /** Precision the group metadata was stored in (fp16 falls back to fp32 per tensor). */
  readonly metaPrecision: MetaPrecision;
  /** Payload bytes (0 for 'keep'; its bytes belong to the original storage). */
  readonly bytes: number;
}

interface Layout {
  metaFloats: number;
  metaPrecision: MetaPrecision;
  lfcValues: number;
  codeBytes: number;
  /** Byte offsets inside the payload (4-byte aligned sections: meta, lfc, codes). */
  lfcOffset: number;
  codeOffset: number;
  total: number;
}

const align4 = (n: number) => (n + 3) & ~3;

function quantLayout(shape: readonly number[], groupSize: number): GroupLayout {
  const n = numel(shape);
  const rows = shape.length >= 2 ? shape[0]! : 1;
  return { rows, rowLength: rows === 0 ? 0 : n / rows, groupSize };
}

function divisionGeometry(shape: readonly number[], block: number): DivisionGeometry {
  if (shape.length !== 4) throw new RangeError(`division encoding needs an [N, C, H, W] tensor, got ${fmt(shape)}`);
  const [n, c, h, w] = shape as [number, number, number, number];
  return { n, c, h, w, block: Math.min(block, h, w) || 1 };
}

/** Mesa's range count: the heads (dim 1) of a 4-D tensor, else one. */
export function mesaHeads(shape: readonly number[]): number {
  return shape.length === 4 ? shape[1]! : 1;
}

/** Mesa's quantization groups: one per (sample, head) of a 4-D tensor, one in all otherwise. */
function mesaLayout(shape: readonly number[]): GroupLayout {
  const n = numel(shape), rows = shape.length === 4 ? shape[0]! * shape[1]! : 1;
  const rowLength = rows === 0 ? 0 : n / rows;
  return { rows, rowLength, groupSize: Math.max(1, rowLength) };
}

/** This batch's (min, max) per Mesa head, from the groupRanges kernel over (sample, head) groups. */
export function mesaBatchRanges(t: Tensor): number[] {
  const heads = mesaHeads(t.shape), layout = mesaLayout(t.shape);
  const x = t.isContiguous() ? t : workspaceCopy(t, t.values());
  const ranges = Tensor.uninitialized([2 * layout.rows], 'float64', 'workspace'); // groupRanges writes every pair
  kernels(x.dtype).groupRanges(x, ranges, layout);
  const r = ranges.data() as Float64Array;
  const out = Array.from({ length: 2 * heads }, (_, i) => (i % 2 ? -Infinity : Infinity));
  for (let g = 0; g < layout.rows; g++) {
    const h = 2 * (g % heads);
    out[h] = Math.min(out[h]!, r[2 * g]!);
    out[h + 1] = Math.max(out[h + 1]!, r[2 * g + 1]!);
  }
  ranges.dispose();
  if (x !== t) x.dispose();
  return out;
}

function layoutOf(e: Encoding, shape: readonly number[], indexBits: number, metaPrecision: MetaPrecision = requestedMeta(e)): Layout {
  const n = numel(shape);
  let metaFloats = 0, lfcValues = 0, codes = 0;
  switch (e.kind) {
    case 'keep': break;
    case 'fp16': lfcValues = n; break;
    case 'quant': metaFloats = 2 * groupCount(quantLayout(shape, e.groupSize)); codes = codeBytes(n, e.bits); break;
    case 'mask': codes = codeBytes(n, 1); break;
    case 'index': codes = codeBytes(n, indexBits); break;
    case 'mesa': metaFloats = 2 * mesaHeads(shape); codes = n; metaPrecision = 'fp32'; break;
    case 'comet': codes = Math.ceil(n / 8); break; // a lower bound: the size depends on the data
    case 'division': {
      const g = divisionGeometry(shape, e.block);
      lfcValues = lfcLength(g);
      metaFloats = 2 * groupCount(hfcLayout(g));
      codes = codeBytes(n, e.hfcBits);
      break;
    }
  }
  const lfcOffset = align4(metaFloats * metaBytes(metaPrecision));
  const codeOffset = align4(lfcOffset + lfcValues * 2);
  return { metaFloats, metaPrecision, lfcValues, codeBytes: codes, lfcOffset, codeOffset, total: e.kind === 'keep' ? 0 : codeOffset + codes };
}

function requestedMeta(e: Encoding): MetaPrecision {
  return (e.kind === 'quant' || e.kind === 'division') && e.metadata === 'fp32' ? 'fp32' : 'fp16';
}

/**
 * Payload bytes `packTensor` allocates for this shape (for 'index', pass the bits per value;
 * for 'comet', whose size depends on the data, a lower bound of 1 bit per element).
 * Exact unless fp16 metadata falls back to fp32 (values beyond ±65504, or a constant group whose
 * value is not an fp16 number): then 4 more bytes per group.
 */
export function packedByteLength(e: Encoding, shape: readonly number[], indexBits = 0): number {
  return layoutOf(e, shape, indexBits).total;
}

/** Checks an encoding's parameters; throws a RangeError naming the bad field. */
export function validateEncoding(e: Encoding, where: string): void {
  switch (e.kind) {
    case 'keep': case 'fp16': case 'mask': case 'index': return;
    case 'mesa': return;
    case 'comet':
      if (!(e.bound > 0 && e.bound < 1)) throw new RangeError(`${where}: comet bound must be in (0, 1), got ${e.bound}`);
      return;
    case 'quant':
      assertCodeBits(e.bits, where);
      if (e.metadata !== undefined && e.metadata !== 'fp16' && e.metadata !== 'fp32') throw new RangeError(`${where}: metadata must be 'fp16' or 'fp32', got ${JSON.stringify(e.metadata)}`);
      if (!Number.isInteger(e.groupSize) || e.groupSize < 1) throw new RangeError(`${where}: groupSize must be a positive integer, got ${e.groupSize}`);
      return;
    case 'division':
      assertCodeBits(e.hfcBits, where);
      if (!Number.isInteger(e.block) || e.block < 1) throw new RangeError(`${where}: division block must be a positive integer, got ${e.block}`);
      return;
    default:
      throw new RangeError(`${where}: unknown encoding kind '${(e as { kind: string }).kind}' (expected keep, fp16, quant, mask, index, division, mesa, comet)`);
  }
}

function views(payload: Tensor, l: Layout) {
  const buf = arena().buffer, p = payload.ptr;
  return {
    meta: l.metaPrecision === 'fp16' ? new Uint16Array(buf, p, l.metaFloats) : new Float32Array(buf, p, l.metaFloats),
    lfc: new Uint16Array(buf, p + l.lfcOffset, l.lfcValues),
    codes: new Uint8Array(buf, p + l.codeOffset, l.codeBytes),
  };
}

/** A contiguous arena copy of a strided tensor's values (kernels read arena memory). */
function workspaceCopy(t: Tensor, values: ArrayLike<number>): Tensor {
  const out = Tensor.uninitialized(t.shape, t.dtype, 'workspace');
  (out.data() as { set(v: ArrayLike<number>): void }).set(values);
  return out;
}

function requireFloat(t: Tensor, e: Encoding): void {
  if (!isFloat(t.dtype)) throw new TypeError(`${encodingName(e)} encoding needs a float tensor, got ${t.dtype} ${fmt(t.shape)}`);
}

/** Compresses `t`. `noise` keys stochastic rounding (null: round to nearest). */
export function packTensor(t: Tensor, e: Encoding, noise: NoiseKey | null): PackedTensor {
  t.assertAlive(`pack ${encodingName(e)}`);
  const base = { encoding: e, shape: t.shape, dtype: t.dtype, indexBits: 0, metaPrecision: 'fp32' as MetaPrecision };
  if (e.kind === 'keep') return { ...base, payload: null, kept: keep(t.view(t.shape, t.strides, t.offset)), bytes: 0 };
  // Arena views are re-taken after every allocation (memory growth detaches them); strided
  // tensors are copied once to the JS heap.
  const copy = t.isContiguous() ? null : t.values();
  const source = () => copy ?? t.data();
  if ((e.kind === 'index' || e.kind === 'mask') && isFloat(t.dtype)) throw new TypeError(`${e.kind} encoding needs an integer tensor, got ${t.dtype} ${fmt(t.shape)}`);
  if (e.kind === 'mask') {
    // One pass: pack the bits and check that every value is 0 or 1.
    const l = layoutOf(e, t.shape, 1);
    const mask = copy === null ? t : workspaceCopy(t, copy);
    const payload = keep(Tensor.uninitialized([l.total], 'uint8', 'saved')); // packMask writes every byte
    const bad = kernels(mask.dtype).packMask(mask, payload);
    if (mask !== t) mask.dispose();
    if (bad >= 0) {
      payload.dispose();
      throw new RangeError(`mask encoding: value ${source()[bad]} at ${bad} is not 0 or 1 (tensor ${fmt(t.shape)})`);
    }
    return { ...base, indexBits: 1, payload, kept: null, bytes: l.total };
  }
  if (e.kind === 'index') {
    const v = source();
    let max = 0;
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      if (x < 0) throw new RangeError(`index encoding: value ${x} at ${i} is negative (tensor ${fmt(t.shape)})`);
      if (x > max) max = x;
    }
    const indexBits = bitsFor(max);
    const l = layoutOf(e, t.shape, indexBits);
    const payload = keep(Tensor.empty([l.total], 'uint8', 'saved'));
    packInts(source(), indexBits, views(payload, l).codes);
    return { ...base, indexBits, payload, kept: null, bytes: l.total };
  }
  requireFloat(t, e);
  if (e.kind === 'fp16') {
    const l = layoutOf(e, t.shape, 0);
    const payload = keep(Tensor.uninitialized([l.total], 'uint8', 'saved')); // halfEncode writes every value
    const x = copy === null ? t : workspaceCopy(t, copy);
    kernels(x.dtype).halfEncode(x, payload, 'fp16');
    if (x !== t) x.dispose();
    return { ...base, payload, kept: null, bytes: l.total };
  }
  if (e.kind === 'comet') {
    // The bound: e.bound x the tensor's value range (NaN skipped), from per-row (min, max).
    const x = copy === null ? t : workspaceCopy(t, copy);
    const k = kernels(x.dtype);
    const rows = t.shape.length >= 2 ? t.shape[0]! : 1, layout = { rows, rowLength: rows === 0 ? 0 : t.size / rows, groupSize: Math.max(1, rows === 0 ? 1 : t.size / rows) };
    const ranges = Tensor.uninitialized([2 * rows], 'float64', 'workspace'); // groupRanges writes every pair
    if (t.size > 0) k.groupRanges(x, ranges, layout);
    const r = ranges.data() as Float64Array;
    let lo = Infinity, hi = -Infinity;
    for (let g = 0; t.size > 0 && g < rows; g++) {
      lo = Math.min(lo, r[2 * g]!);
      hi = Math.max(hi, r[2 * g + 1]!);
    }
    ranges.dispose();
    const payload = keep(k.cometEncode(x, Number.isFinite(hi - lo) ? e.bound * (hi - lo) : 0, 'saved'));
    if (x !== t) x.dispose();
    return { ...base, payload, kept: null, bytes: payload.size };
  }
  if (e.kind === 'mesa') return packMesa(t, e, noise, copy, base);
  // Group quantization, of x itself or of DIVISION's high-frequency residual.
  let bits: CodeBits, groups: GroupLayout, residual: Tensor | null = null, lfc: Uint16Array | null = null;
  if (e.kind === 'division') {
    const g = divisionGeometry(t.shape, e.block);
    bits = e.hfcBits;
    groups = hfcLayout(g);
    residual = Tensor.empty(t.shape, t.dtype, 'workspace');
    lfc = new Uint16Array(lfcLength(g));
    divisionSplit(source() as FloatArray, g, lfc, residual.data() as FloatArray);
  } else {
    bits = e.bits;
    groups = quantLayout(t.shape, e.groupSize);
  }
  // The kernels read x and the metadata in arena memory (a strided x is copied once).
  const x = residual ?? (copy === null ? t : workspaceCopy(t, copy));
  const k = kernels(x.dtype);
  const stochastic = e.kind === 'division' || e.stochastic !== false;
  const metaInArena = Tensor.uninitialized([2 * groupCount(groups)], 'float64', 'workspace'); // written for every group
  // Ranges, (min, step) and codes in one kernel call; fp16 metadata falls back to fp32 for the
  // whole array when a group needs it (then the codes move: the layout starts with the metadata).
  let precision = requestedMeta(e), payload: Tensor, l: Layout;
  for (;;) {
    l = layoutOf(e, t.shape, 0, precision);
    payload = keep(Tensor.empty([l.total], 'uint8', 'saved'));
    const codes = payload.view([l.codeBytes], [1], payload.offset + l.codeOffset);
    const done = k.groupQuantize(x, metaInArena, codes, groups, bits, stochastic ? noise : null, precision);
    codes.dispose();
    if (done) break;
    payload.dispose();
    precision = 'fp32';
  }
  if (x !== t && x !== residual) x.dispose();
  const v = views(payload, l);
  const meta = metaInArena.data() as Float64Array; // re-read: allocating the payload may have grown memory
  if (precision === 'fp16') encodeFloat16(meta, v.meta as Uint16Array);
  else (v.meta as Float32Array).set(meta);
  metaInArena.dispose();
  if (lfc) v.lfc.set(lfc);
  residual?.dispose();
  return { ...base, metaPrecision: precision, payload, kept: null, bytes: l.total };
}

/** Mesa's pack: 8-bit codes against the given per-head ranges (never clamping a value: see act.ts). */
function packMesa(t: Tensor, e: Extract<Encoding, { kind: 'mesa' }>, noise: NoiseKey | null, copy: ArrayLike<number> | null, base: Omit<PackedTensor, 'payload' | 'kept' | 'bytes'>): PackedTensor {
  const heads = mesaHeads(t.shape);
  if (e.ranges.length !== 2 * heads) throw new RangeError(`mesa encoding: ${e.ranges.length / 2} ranges for ${heads} heads (tensor ${fmt(t.shape)})`);
  const layout = mesaLayout(t.shape);
  const l = layoutOf(e, t.shape, 0);
  const meta = Tensor.uninitialized([2 * layout.rows], 'float64', 'workspace');
  const m = meta.data() as Float64Array;
  for (let g = 0; g < layout.rows; g++) {
    const lo = Math.fround(e.ranges[2 * (g % heads)]!), hi = e.ranges[2 * (g % heads) + 1]!;
    m[2 * g] = lo;
    m[2 * g + 1] = Math.fround((hi - lo) / 255);
  }
  const x = copy === null ? t : workspaceCopy(t, copy);
  const payload = keep(Tensor.empty([l.total], 'uint8', 'saved'));
  const codes = payload.view([l.codeBytes], [1], payload.offset + l.codeOffset);
  kernels(x.dtype).quantizeGroups(x, meta, codes, layout, 8, noise);
  codes.dispose();
  if (x !== t) x.dispose();
  const stored = views(payload, l).meta as Float32Array;
  for (let h = 0; h < heads; h++) stored.set([m[2 * h]!, m[2 * h + 1]!], 2 * h);
  meta.dispose();
  return { ...base, metaPrecision: 'fp32', payload, kept: null, bytes: l.total };
}

/**
 * The expected squared reconstruction error Σ E(x̂ − x)² of packing `t` with a quant encoding at
 * each of `widths` bits (same groups and metadata precision as `packTensor`; `roundingNoiseEnergy`).
 */
export function quantNoiseEnergy(t: Tensor, e: Extract<Encoding, { kind: 'quant' }>, widths: readonly CodeBits[] = [e.bits]): number[] {
  const x = (t.isContiguous() ? t.data() : t.values()) as FloatArray;
  return roundingNoiseEnergy(x, quantLayout(t.shape, e.groupSize), widths, requestedMeta(e), e.stochastic !== false);
}

/** Rebuilds the tensor (a new contiguous 'workspace' tensor owned by the caller; a view for 'keep'). */
export function unpackTensor(p: PackedTensor): Tensor {
  if (p.kept) return p.kept.view(p.kept.shape, p.kept.strides, p.kept.offset);
  if (!p.payload) throw new Error('unpack: the packed tensor was released');
  // Every decoder below writes every element.
  const out = Tensor.uninitialized(p.shape, p.dtype, 'workspace');
  const e = p.encoding;
  const l = layoutOf(e, p.shape, p.indexBits, p.metaPrecision);
  const codesOf = () => p.payload!.view([l.codeBytes], [1], p.payload!.offset + l.codeOffset);
  if (e.kind === 'mask') {
    const codes = codesOf();
    kernels(out.dtype).unpackMask(codes, out);
    codes.dispose();
    return out;
  }
  if (e.kind === 'quant') {
    // The kernel reads float32 (min, step) pairs from arena memory: fp32 metadata in place, fp16 decoded.
    const meta = Tensor.uninitialized([l.metaFloats], 'float32', 'workspace');
    const stored = views(p.payload, l).meta;
    if (stored instanceof Uint16Array) decodeFloat16(stored, meta.data() as Float32Array);
    else (meta.data() as Float32Array).set(stored);
    const codes = codesOf();
    kernels(out.dtype).dequantizeGroups(codes, meta, out, quantLayout(p.shape, e.groupSize), e.bits);
    codes.dispose();
    meta.dispose();
    return out;
  }
  if (e.kind === 'mesa') {
    const perHead = views(p.payload, l).meta as Float32Array, heads = perHead.length / 2;
    const layout = mesaLayout(p.shape);
    const meta = Tensor.uninitialized([2 * layout.rows], 'float32', 'workspace');
    const m = meta.data() as Float32Array;
    for (let g = 0; g < layout.rows; g++) m.set(perHead.subarray(2 * (g % heads), 2 * (g % heads) + 2), 2 * g);
    const codes = codesOf();
    kernels(out.dtype).dequantizeGroups(codes, meta, out, layout, 8);
    codes.dispose();
    meta.dispose();
    return out;
  }
  if (e.kind === 'comet') {
    kernels(out.dtype).cometDecode(p.payload, out);
    return out;
  }
  const { meta: rawMeta, lfc, codes } = views(p.payload, l);
  let meta: ArrayLike<number> = rawMeta;
  if (rawMeta instanceof Uint16Array) {
    const m = new Float32Array(rawMeta.length);
    decodeFloat16(rawMeta, m);
    meta = m;
  }
  if (e.kind === 'fp16') {
    kernels(out.dtype).halfDecode(p.payload, out, 'fp16');
    return out;
  }
  const dst = out.data();
  switch (e.kind) {
    case 'index': unpackInts(codes, p.indexBits, dst); break;
    case 'division': divisionDecode(lfc, codes, meta, divisionGeometry(p.shape, e.block), e.hfcBits, dst as FloatArray); break;
  }
  return out;
}

/** Frees the payload (or the kept view). Idempotent. */
export function releasePacked(p: PackedTensor): void {
  p.payload?.dispose();
  p.kept?.dispose();
}

/**
 * Codecs for tensors sent between stages (AC-SGD, `../shared/spec/pipeline.md` §3-4).
 *
 * - fp32: raw values.
 * - fixpoint:b: one fp16 max-abs scale S per channel, codes q = clip(round(x/S·2^{b-1}),
 *   -2^{b-1}, 2^{b-1}-1) + 2^{b-1} packed at b bits; decoded as (q - 2^{b-1})/2^{b-1}·S.
 * - delta:b (AC-SGD): both ends keep, per example id, the last reconstructed activation m; the
 *   sender sends fixpoint(a - m) and both set m += decode(codes); the receiver forwards m. An
 *   example seen for the first time (the first epoch) is sent as fp32 and fills the caches. The
 *   sender's frame carries a hash of its updated cache entries; the receiver compares it with its
 *   own and stops training on a mismatch.
 *
 * Channels: dim 1 of a rank-4 tensor [N, C, H, W], otherwise the last dim.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { decodeFloat16, encodeFloat16 } from '../compress/float16.js';
import { codeBytes, packInts, unpackInts } from '../compress/quantize.js';

export type CodecKind = 'fp32' | 'fixpoint' | 'delta';

export interface CodecSpec {
  kind: CodecKind;
  /** Bits per value (32 for fp32; 1-8 otherwise). */
  bits: number;
}

/** Parses 'fp32', 'fixpoint:B' or 'delta:B' (B in 1..8). */
export function parseCodec(s: string, what: string): CodecSpec {
  if (s === 'fp32') return { kind: 'fp32', bits: 32 };
  const m = /^(fixpoint|delta):(\d)$/.exec(s);
  const bits = m ? Number(m[2]) : 0;
  if (!m || bits < 1 || bits > 8) throw new Error(`${what}: '${s}' is not a codec (fp32, fixpoint:B or delta:B with B in 1..8)`);
  return { kind: m[1] as CodecKind, bits };
}

export function codecName(c: CodecSpec): string {
  return c.kind === 'fp32' ? 'fp32' : `${c.kind}:${c.bits}`;
}

/** A tensor seen as [outer, channels, inner] (row-major). */
export interface ChannelLayout {
  outer: number;
  channels: number;
  inner: number;
}

export function channelLayout(shape: readonly number[]): ChannelLayout {
  const n = shape.reduce((a, b) => a * b, 1);
  if (shape.length === 4) return { outer: shape[0]!, channels: shape[1]!, inner: shape[2]! * shape[3]! };
  const c = shape[shape.length - 1] ?? 1;
  return { outer: c ? n / c : 0, channels: c, inner: 1 };
}

/** A flat vector in contiguous blocks of `block` values (the last one may be shorter), one scale each. */
export function blockLayout(n: number, block: number): ChannelLayout {
  return { outer: 1, channels: Math.ceil(n / block), inner: block };
}

/** Bytes of a fixpoint payload: fp16 scales, then the packed codes. */
export function fixpointBytes(n: number, layout: ChannelLayout, bits: number): number {
  return 2 * layout.channels + codeBytes(n, bits);
}

/** Packs codes < 2^bits LSB-first (the layout of `packInts`), with fast paths for 1, 2, 4 and 8 bits. */
function packCodes(codes: Uint8Array, bits: number, out: Uint8Array): void {
  if (bits === 8) out.set(codes);
  else if (8 % bits === 0) {
    const per = 8 / bits;
    for (let j = 0, i = 0; i < codes.length; j++) {
      let b = 0;
      for (let k = 0; k < per && i < codes.length; k++, i++) b |= codes[i]! << (k * bits);
      out[j] = b;
    }
  } else packInts(codes, bits, out);
}

function unpackCodes(src: Uint8Array, bits: number, codes: Uint8Array): void {
  if (bits === 8) codes.set(src.subarray(0, codes.length));
  else if (8 % bits === 0) {
    const per = 8 / bits, mask = (1 << bits) - 1;
    for (let j = 0, i = 0; i < codes.length; j++) {
      const b = src[j]!;
      for (let k = 0; k < per && i < codes.length; k++, i++) codes[i] = (b >>> (k * bits)) & mask;
    }
  } else unpackInts(src, bits, codes);
}

/** Quantizes `x` (n values in `layout`) to a fixpoint payload. */
export function fixpointEncode(x: Float32Array, layout: ChannelLayout, bits: number): Uint8Array {
  const { channels: C, inner } = layout;
  const n = x.length;
  const maxAbs = new Float32Array(C);
  // One pass with a running channel index (c advances every `inner` values, wraps every C).
  for (let i = 0, c = 0, k = 0; i < n; i++) {
    const a = Math.abs(x[i]!);
    if (a > maxAbs[c]!) maxAbs[c] = a;
    if (++k === inner) {
      k = 0;
      if (++c === C) c = 0;
    }
  }
  const out = new Uint8Array(fixpointBytes(n, layout, bits));
  const scales16 = new Uint16Array(C);
  encodeFloat16(maxAbs, scales16);
  out.set(new Uint8Array(scales16.buffer), 0);
  const scales = new Float32Array(C);
  decodeFloat16(scales16, scales); // encode with the scale the receiver will see
  const h = 2 ** (bits - 1);
  const mult = scales.map((s) => (s > 0 && Number.isFinite(s) ? h / s : 0));
  const codes = new Uint8Array(n);
  for (let i = 0, c = 0, k = 0; i < n; i++) {
    const q = Math.round(x[i]! * mult[c]!);
    codes[i] = (q < -h ? -h : q > h - 1 ? h - 1 : q) + h;
    if (++k === inner) {
      k = 0;
      if (++c === C) c = 0;
    }
  }
  packCodes(codes, bits, out.subarray(2 * C));
  return out;
}

/** Decodes a fixpoint payload into `out` (n values). */
export function fixpointDecode(payload: Uint8Array, layout: ChannelLayout, bits: number, out: Float32Array): void {
  const { channels: C, inner } = layout;
  const n = out.length;
  if (payload.length !== fixpointBytes(n, layout, bits)) {
    throw new Error(`fixpoint payload has ${payload.length} bytes, expected ${fixpointBytes(n, layout, bits)} for ${n} values at ${bits} bits`);
  }
  const scales16 = new Uint16Array(payload.slice(0, 2 * C).buffer);
  const scales = new Float32Array(C);
  decodeFloat16(scales16, scales);
  const codes = new Uint8Array(n);
  unpackCodes(payload.subarray(2 * C), bits, codes);
  const h = 2 ** (bits - 1);
  const step = scales.map((s) => (Number.isFinite(s) ? s / h : 0));
  for (let i = 0, c = 0, k = 0; i < n; i++) {
    out[i] = (codes[i]! - h) * step[c]!;
    if (++k === inner) {
      k = 0;
      if (++c === C) c = 0;
    }
  }
}

/** 32-bit FNV-1a over the bit patterns of `x` (continuing from `h`). */
export function hashFloats(x: Float32Array, h = 0x811c9dc5): number {
  const w = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w[i]!, 0x01000193);
  return h >>> 0;
}

function rawBytes(x: Float32Array): Uint8Array {
  return new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength));
}

function rawValues(payload: Uint8Array, n: number, where: string): Float32Array {
  if (payload.length !== 4 * n) throw new Error(`${where}: fp32 payload has ${payload.length} bytes, expected ${4 * n}`);
  return new Float32Array(payload.slice().buffer);
}

// ---------------------------------------------------------------------------------------------
// Per-example caches.

/** The last reconstructed activation of each example, keyed by dataset id. */
export interface ExampleCache {
  has(id: number): boolean;
  /** Copies entry `id` into `out`. */
  read(id: number, out: Float32Array): void;
  /** Stores entry `id`; `layout` is the example's channel layout (used by low-bit caches). */
  write(id: number, values: Float32Array, layout?: ChannelLayout): void;
  close(): void;
}

/**
 * Entries stored at `bits` bits with one fp16 max-abs scale per (example, channel), as AC-SGD's
 * `delta-lowbits` (8x less memory than fp32 at 4 bits). Both ends store and read back the same
 * bits, so they stay identical; deltas are taken against the value read back.
 */
export class LowBitCache implements ExampleCache {
  private readonly entries = new Map<number, { payload: Uint8Array; layout: ChannelLayout }>();
  constructor(readonly bits = 4) {}
  has(id: number): boolean {
    return this.entries.has(id);
  }
  read(id: number, out: Float32Array): void {
    const e = this.entries.get(id)!;
    fixpointDecode(e.payload, e.layout, this.bits, out);
  }
  write(id: number, values: Float32Array, layout: ChannelLayout = channelLayout([values.length])): void {
    this.entries.set(id, { payload: fixpointEncode(values, layout, this.bits), layout });
  }
  close(): void {
    this.entries.clear();
  }
}

export class MemoryCache implements ExampleCache {
  private readonly entries = new Map<number, Float32Array>();
  has(id: number): boolean {
    return this.entries.has(id);
  }
  read(id: number, out: Float32Array): void {
    out.set(this.entries.get(id)!);
  }
  write(id: number, values: Float32Array): void {
    const e = this.entries.get(id);
    if (e && e.length === values.length) e.set(values);
    else this.entries.set(id, values.slice());
  }
  close(): void {
    this.entries.clear();
  }
}

/** Equal-sized float32 entries in one file, slot by slot in first-write order (size fixed by the first write). */
export class FileCache implements ExampleCache {
  private readonly slots = new Map<number, number>();
  private readonly fd: number;
  private perExample = 0;
  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'w+');
    } catch (e) {
      throw new Error(`cannot create activation cache file ${path}: ${(e as Error).message}`);
    }
  }
  has(id: number): boolean {
    return this.slots.has(id);
  }
  read(id: number, out: Float32Array): void {
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    readSync(this.fd, bytes, 0, bytes.length, this.slots.get(id)! * this.perExample * 4);
  }
  write(id: number, values: Float32Array): void {
    if (!this.perExample) this.perExample = values.length;
    if (values.length !== this.perExample) throw new Error(`activation cache ${this.path}: entry of ${values.length} values, expected ${this.perExample}`);
    let slot = this.slots.get(id);
    if (slot === undefined) this.slots.set(id, (slot = this.slots.size));
    writeSync(this.fd, new Uint8Array(values.buffer, values.byteOffset, values.byteLength), 0, values.byteLength, slot * this.perExample * 4);
  }
  close(): void {
    closeSync(this.fd);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoder / decoder for one direction of one boundary.

export interface Encoded {
  codec: CodecKind;
  bits: number;
  payload: Uint8Array;
  hash?: number;
}

function gather(cache: ExampleCache, ids: readonly number[], per: number, where: string): Float32Array {
  const m = new Float32Array(ids.length * per);
  ids.forEach((id, j) => {
    if (!cache.has(id)) throw new Error(`${where}: the activation cache has no entry for example ${id}; the two ends are out of sync`);
    cache.read(id, m.subarray(j * per, (j + 1) * per));
  });
  return m;
}

function scatter(cache: ExampleCache, ids: readonly number[], shape: readonly number[], m: Float32Array): void {
  const per = m.length / ids.length;
  const layout = channelLayout([1, ...shape.slice(1)]); // one example: scales per channel over its positions
  ids.forEach((id, j) => cache.write(id, m.subarray(j * per, (j + 1) * per), layout));
}

/** Sender side. `cache` is required for delta codecs (`makeCache`). */
export class TensorEncoder {
  constructor(readonly spec: CodecSpec, private readonly cache: ExampleCache | null = null) {
    if (spec.kind === 'delta' && !cache) throw new Error('delta codec needs an example cache');
  }
  encode(x: Float32Array, shape: readonly number[], ids: readonly number[]): Encoded {
    const { kind, bits } = this.spec;
    if (kind === 'fp32') return { codec: 'fp32', bits: 32, payload: rawBytes(x) };
    const layout = channelLayout(shape);
    if (kind === 'fixpoint') return { codec: 'fixpoint', bits, payload: fixpointEncode(x, layout, bits) };
    const cache = this.cache!;
    const per = x.length / ids.length;
    if (!ids.every((id) => cache.has(id))) {
      // Warm-up (first sight of these examples): exact values fill both caches.
      scatter(cache, ids, shape, x);
      return { codec: 'fp32', bits: 32, payload: rawBytes(x), hash: hashFloats(x) };
    }
    const m = gather(cache, ids, per, 'delta encoder');
    const d = new Float32Array(x.length);
    for (let i = 0; i < d.length; i++) d[i] = x[i]! - m[i]!;
    const payload = fixpointEncode(d, layout, bits);
    fixpointDecode(payload, layout, bits, d); // what the receiver will add
    for (let i = 0; i < m.length; i++) m[i] = m[i]! + d[i]!;
    scatter(cache, ids, shape, m);
    return { codec: 'delta', bits, payload, hash: hashFloats(m) };
  }
}

export interface DecodeInfo {
  codec?: string;
  bits?: number;
  shape?: number[];
  ids?: number[];
  hash?: number;
}

/** Receiver side; `where` names the boundary/step in errors. */
export class TensorDecoder {
  constructor(readonly spec: CodecSpec, private readonly cache: ExampleCache | null = null) {
    if (spec.kind === 'delta' && !cache) throw new Error('delta codec needs an example cache');
  }
  decode(h: DecodeInfo, payload: Uint8Array, where: string): Float32Array {
    const shape = h.shape ?? [];
    const n = shape.reduce((a, b) => a * b, 1);
    const ids = h.ids ?? [];
    const expectDelta = this.spec.kind === 'delta';
    if (h.codec === 'fp32') {
      const x = rawValues(payload, n, where);
      if (expectDelta) {
        scatter(this.cache!, ids, shape, x);
        this.check(h.hash, x, where);
      }
      return x;
    }
    if (h.codec !== this.spec.kind || h.bits !== this.spec.bits) {
      throw new Error(`${where}: received codec ${h.codec}:${h.bits}, this end expects ${codecName(this.spec)}; start every stage with the same codec options`);
    }
    const layout = channelLayout(shape);
    const d = new Float32Array(n);
    fixpointDecode(payload, layout, this.spec.bits, d);
    if (!expectDelta) return d;
    const per = n / ids.length;
    const m = gather(this.cache!, ids, per, where);
    for (let i = 0; i < m.length; i++) m[i] = m[i]! + d[i]!;
    scatter(this.cache!, ids, shape, m);
    this.check(h.hash, m, where);
    return m;
  }
  private check(sent: number | undefined, m: Float32Array, where: string): void {
    const mine = hashFloats(m);
    if (sent !== mine) {
      throw new Error(`${where}: AC-SGD cache mismatch: sender's cache hash ${sent?.toString(16) ?? 'missing'}, receiver's ${mine.toString(16)}; the per-example caches diverged, stopping`);
    }
  }
}

export type CacheMode = 'memory' | 'file' | 'lowbit';

/** A cache for one end of one boundary: fp32 in memory, fp32 in a file under `dir`, or 4-bit in memory. */
export function makeCache(mode: CacheMode, dir: string, name: string): ExampleCache {
  if (mode === 'lowbit') return new LowBitCache(4);
  return mode === 'file' ? new FileCache(`${dir}/${name}.cache`) : new MemoryCache();
}

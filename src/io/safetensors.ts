/**
 * The safetensors format: 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}, then the
 * raw little-endian tensor bytes. The header is padded with spaces to a multiple of 8 bytes so
 * that every tensor can be viewed in place. Pure functions over bytes (no file system).
 */
import { DTYPES, type AnyTypedArray, type DType } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import { asBytes } from '../util/bytes.js';
import { crc32, crcHex } from '../util/crc32.js';

const TO_ST: Record<DType, string> = { float32: 'F32', float64: 'F64', int32: 'I32', int8: 'I8', uint8: 'U8' };
const FROM_ST: Record<string, DType> = Object.fromEntries(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));

export interface StoredTensor {
  dtype: DType;
  shape: number[];
  values: AnyTypedArray;
}

/** Metadata key of the CRC-32 slimgrad writes (over the whole file, with these 8 hex digits read as '0'). */
export const CHECKSUM_KEY = 'slimgrad.crc32';
const ZEROS = new TextEncoder().encode('00000000');
const KEY_BYTES = new TextEncoder().encode(`"${CHECKSUM_KEY}":"`);

/**
 * Serializes named tensors (copied in row-major order) and string metadata, plus a CRC-32 over the
 * whole file in the metadata (other safetensors readers ignore it).
 */
export function encodeSafetensors(tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { [CHECKSUM_KEY]: '00000000', ...metadata } };
  let offset = 0;
  const chunks: Uint8Array[] = [];
  for (const [name, t] of tensors) {
    const v = t.values();
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    header[name] = { dtype: TO_ST[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = new Uint8Array(raw.length + ((8 - (raw.length % 8)) % 8)).fill(0x20);
  headerBytes.set(raw);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let p = 8 + headerBytes.length;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  const at = 8 + indexOf(headerBytes, KEY_BYTES) + KEY_BYTES.length;
  out.set(new TextEncoder().encode(crcHex(crc32(out))), at);
  return out;
}

export interface DecodeOptions {
  /** Refuse files without slimgrad's checksum (default false: files from other tools load after the structural checks). */
  requireChecksum?: boolean;
}

/**
 * Parses safetensors bytes (a Node Buffer, a view at any offset, or an ArrayBuffer); `source`
 * names the file in errors. Every header field is checked against the file size before any tensor
 * is built, tensors must tile the data area exactly, and slimgrad's checksum, when present (or
 * required), must match. The returned metadata leaves the checksum out.
 */
export function decodeSafetensors(data: Uint8Array | ArrayBuffer, source = 'safetensors data', options: DecodeOptions = {}): { tensors: Map<string, StoredTensor>; metadata: Record<string, string> } {
  const bytes = asBytes(data);
  const fail = (why: string): never => {
    throw new Error(`${source}: not a valid safetensors file: ${why}`);
  };
  if (bytes.length < 8) fail(`only ${bytes.length} bytes`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) fail(`header length ${n} exceeds the file size ${bytes.length}`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    return fail(`header is not JSON (${(e as Error).message})`);
  }
  if (!isObject(header)) return fail('header is not a JSON object');
  const meta = header.__metadata__ ?? {};
  if (!isObject(meta) || !Object.values(meta).every((v) => typeof v === 'string')) fail('__metadata__ must map names to strings');
  const { [CHECKSUM_KEY]: stored, ...metadata } = meta as Record<string, string>;
  if (stored === undefined && options.requireChecksum) fail(`no '${CHECKSUM_KEY}' checksum in __metadata__ (files written by slimgrad carry one)`);
  const base = 8 + n, dataBytes = bytes.length - base;
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (!isObject(h)) return fail(`tensor '${name}': expected {dtype, shape, data_offsets}`);
    const dtype = typeof h.dtype === 'string' && Object.hasOwn(FROM_ST, h.dtype) ? FROM_ST[h.dtype] : undefined;
    if (!dtype) fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(h.dtype)}`);
    const shape = h.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor '${name}': shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
    const offsets = h.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      fail(`tensor '${name}': data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`);
    }
    const [b, e] = offsets as [number, number];
    const count = (shape as number[]).reduce((a, d) => a * d, 1);
    if (e - b !== count * DTYPES[dtype!].bytes) fail(`tensor '${name}' has ${e - b} bytes for shape [${shape}] ${h.dtype}`);
    if (e > dataBytes) fail(`tensor '${name}' is truncated (needs bytes up to ${base + e}, file has ${bytes.length})`);
    entries.push({ name, dtype: dtype!, shape, begin: b, end: e });
  }
  // The tensors must cover the data area exactly: no overlaps, no holes, nothing after the last.
  let covered = 0;
  for (const t of [...entries].sort((x, y) => x.begin - y.begin)) {
    if (t.begin !== covered) fail(`tensor '${t.name}' starts at byte ${t.begin} of the data, expected ${covered} (tensors must be stored back to back)`);
    covered = t.end;
  }
  if (covered !== dataBytes) fail(`the header describes ${covered} bytes of tensor data, the file holds ${dataBytes}`);
  if (stored !== undefined) verifyChecksum(bytes, n, stored, fail);
  const tensors = new Map<string, StoredTensor>();
  for (const { name, dtype, shape, begin, end } of entries) {
    // A copy with a buffer of its own (a Node Buffer's slice would be a view into a shared pool).
    const copy = new Uint8Array(bytes.subarray(base + begin, base + end));
    tensors.set(name, { dtype, shape, values: new DTYPES[dtype].ctor(copy.buffer, 0, (end - begin) / DTYPES[dtype].bytes) });
  }
  return { tensors, metadata };
}

function verifyChecksum(bytes: Uint8Array, headerLength: number, stored: string, fail: (why: string) => never): void {
  const found = indexOf(bytes.subarray(8, 8 + headerLength), KEY_BYTES);
  const at = 8 + found + KEY_BYTES.length;
  if (found < 0 || !/^[0-9a-f]{8}$/.test(stored) || new TextDecoder().decode(bytes.subarray(at, at + 8)) !== stored) fail(`field '${CHECKSUM_KEY}' is malformed`);
  const computed = crc32(bytes.subarray(at + 8), crc32(ZEROS, crc32(bytes.subarray(0, at))));
  if (crcHex(computed) !== stored) fail(`checksum: stored CRC-32 ${stored} but the contents give ${crcHex(computed)}: the file is corrupt`);
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** First index of `needle` in `hay`, or -1. */
function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * The safetensors format: 8-byte little-endian header length, a JSON header
 * {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}, then the
 * raw little-endian tensor bytes. The header is padded with spaces to a multiple of 8 bytes so
 * that every tensor can be viewed in place. Pure functions over bytes (no file system).
 */
import { DTYPES, type AnyTypedArray, type DType } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';

const TO_ST: Record<DType, string> = { float32: 'F32', float64: 'F64', int32: 'I32', int8: 'I8', uint8: 'U8' };
const FROM_ST: Record<string, DType> = Object.fromEntries(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));

export interface StoredTensor {
  dtype: DType;
  shape: number[];
  values: AnyTypedArray;
}

/** Serializes named tensors (copied in row-major order) and string metadata. */
export function encodeSafetensors(tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
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
  return out;
}

/**
 * Parses safetensors bytes; `source` names the file in errors. Hostile input is refused with an
 * error naming the file: the header must be a JSON object of tensors {dtype, shape, data_offsets}
 * (plus string metadata) whose byte ranges tile the data section exactly, as the format requires.
 */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors data'): { tensors: Map<string, StoredTensor>; metadata: Record<string, string> } {
  const fail = (why: string): never => {
    throw new Error(`${source}: not a valid safetensors file: ${why}`);
  };
  if (bytes.length < 8) fail(`only ${bytes.length} bytes`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) fail(`header length ${n} exceeds the file size ${bytes.length}`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    return fail(`header is not JSON (${(e as Error).message})`);
  }
  if (!isObject(header)) return fail('header is not a JSON object');
  const base = 8 + n;
  const metadata = header.__metadata__ ?? {};
  if (!isObject(metadata) || !Object.values(metadata).every((v) => typeof v === 'string')) fail('__metadata__ is not an object of strings');
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (!isObject(h)) return fail(`tensor '${name}' is not an object`);
    const dtype = typeof h.dtype === 'string' && Object.hasOwn(FROM_ST, h.dtype) ? FROM_ST[h.dtype]! : fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(h.dtype)}`);
    const shape = h.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return fail(`tensor '${name}' has a bad shape ${JSON.stringify(shape)}`);
    const offsets = h.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      return fail(`tensor '${name}' has bad data_offsets ${JSON.stringify(offsets)}`);
    }
    const [b, e] = offsets as [number, number];
    const count = shape.reduce((a: number, d: number) => a * d, 1);
    if (e - b !== count * DTYPES[dtype].bytes) fail(`tensor '${name}' has ${e - b} bytes for shape [${shape.slice(0, 6)}${shape.length > 6 ? ', …' : ''}] ${h.dtype}`);
    if (base + e > bytes.length) fail(`tensor '${name}' is truncated (needs bytes up to ${base + e}, file has ${bytes.length})`);
    entries.push({ name, dtype, shape, begin: b, end: e });
  }
  // The byte ranges must tile the data section: no overlaps, no holes, nothing after the last.
  let at = 0;
  for (const t of [...entries].sort((x, y) => x.begin - y.begin || x.end - y.end)) {
    if (t.begin !== at) fail(`tensor '${t.name}' starts at data byte ${t.begin}, expected ${at} (tensors overlap or leave a hole)`);
    at = t.end;
  }
  if (base + at !== bytes.length) fail(`${bytes.length - base - at} unexpected bytes after the last tensor`);
  const tensors = new Map<string, StoredTensor>();
  for (const { name, dtype, shape, begin, end } of entries) {
    // Uint8Array's slice copies (a Node Buffer's slice would be a view into a shared pool).
    const copy = Uint8Array.prototype.slice.call(bytes, base + begin, base + end);
    tensors.set(name, { dtype, shape, values: new DTYPES[dtype].ctor(copy.buffer, 0, (end - begin) / DTYPES[dtype].bytes) });
  }
  return { tensors, metadata: metadata as Record<string, string> };
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

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

/** Parses safetensors bytes; `source` names the file in errors. */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors data'): { tensors: Map<string, StoredTensor>; metadata: Record<string, string> } {
  const fail = (why: string): never => {
    throw new Error(`${source}: not a valid safetensors file: ${why}`);
  };
  if (bytes.length < 8) fail(`only ${bytes.length} bytes`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) fail(`header length ${n} exceeds the file size ${bytes.length}`);
  let header: Record<string, any>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    return fail(`header is not JSON (${(e as Error).message})`);
  }
  const base = 8 + n;
  const tensors = new Map<string, StoredTensor>();
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const dtype = FROM_ST[h.dtype];
    if (!dtype) fail(`tensor '${name}' has unsupported dtype ${h.dtype}`);
    const [b, e] = h.data_offsets as [number, number];
    const count = (h.shape as number[]).reduce((a, d) => a * d, 1);
    if (e - b !== count * DTYPES[dtype!].bytes) fail(`tensor '${name}' has ${e - b} bytes for shape [${h.shape}] ${h.dtype}`);
    if (base + e > bytes.length) fail(`tensor '${name}' is truncated (needs bytes up to ${base + e}, file has ${bytes.length})`);
    // Uint8Array's slice copies (a Node Buffer's slice would be a view into a shared pool).
    const copy = Uint8Array.prototype.slice.call(bytes, base + b, base + e);
    tensors.set(name, { dtype: dtype!, shape: h.shape, values: new DTYPES[dtype!].ctor(copy.buffer, 0, count) });
  }
  return { tensors, metadata: header.__metadata__ ?? {} };
}

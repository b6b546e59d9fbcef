/**
 * The deployed-model file format (SGQM): a small JSON header describing the stages, then their
 * packed arrays. Pure bytes in and out (no Node APIs), so the browser and Node share it.
 */
import type { DeployedModel, Stage } from '../quant/convert.js';

// File format: "SGQM", u32 version, u32 JSON length, JSON (stages with array references), zero
// padding to 4 bytes, then the arrays back to back (each 4-byte aligned), little-endian.

const MAGIC = 0x4d514753; // "SGQM"
const VERSION = 1;
type StoredArray = Uint32Array | Int32Array | Int8Array | Float32Array;
const ctors = { u32: Uint32Array, i32: Int32Array, i8: Int8Array, f32: Float32Array } as const;
type ArrayKind = keyof typeof ctors;
const kindOf = (a: StoredArray): ArrayKind => (a instanceof Uint32Array ? 'u32' : a instanceof Int32Array ? 'i32' : a instanceof Int8Array ? 'i8' : 'f32');
const pad4 = (n: number): number => (n + 3) & ~3;

/** Bytes of array payload of a deployed model (what summary() predicts). */
export function payloadBytes(model: DeployedModel): number {
  let n = 0;
  for (const s of model.stages) for (const v of Object.values(s)) if (ArrayBuffer.isView(v)) n += pad4(v.byteLength);
  return n;
}

/** Serializes a deployed model; the result is header (12 bytes + JSON) + payloadBytes(model). */
export function encodeDeployed(model: DeployedModel): Uint8Array {
  const arrays: StoredArray[] = [];
  let offset = 0;
  const stages = model.stages.map((s) =>
    Object.fromEntries(Object.entries(s).map(([key, v]) => {
      if (!ArrayBuffer.isView(v)) return [key, v];
      const a = v as StoredArray;
      arrays.push(a);
      const ref = { $array: kindOf(a), offset, length: a.length };
      offset += pad4(a.byteLength);
      return [key, ref];
    })),
  );
  const json = new TextEncoder().encode(JSON.stringify({ inputShape: model.inputShape, stages }));
  const head = 12 + pad4(json.length);
  const bytes = new Uint8Array(head + offset);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, VERSION, true);
  dv.setUint32(8, json.length, true);
  bytes.set(json, 12);
  let at = head;
  for (const a of arrays) {
    bytes.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at += pad4(a.byteLength);
  }
  return bytes;
}

/** Parses bytes written by encodeDeployed; `source` names the file in errors. */
export function decodeDeployed(bytes: Uint8Array, source = 'deployed model'): DeployedModel {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 12 || dv.getUint32(0, true) !== MAGIC) throw new Error(`${source}: not a slimgrad quantized model (missing "SGQM" magic)`);
  const version = dv.getUint32(4, true);
  if (version !== VERSION) throw new Error(`${source}: format version ${version} is not supported (expected ${VERSION})`);
  const jsonLength = dv.getUint32(8, true);
  const head = 12 + pad4(jsonLength);
  if (head > bytes.length) throw new Error(`${source}: truncated header`);
  const meta = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + jsonLength))) as { inputShape: number[]; stages: Record<string, unknown>[] };
  const stages = meta.stages.map((s) =>
    Object.fromEntries(Object.entries(s).map(([key, v]) => {
      const ref = v as { $array?: ArrayKind; offset: number; length: number };
      if (!ref || typeof ref !== 'object' || !ref.$array) return [key, v];
      const C = ctors[ref.$array];
      const start = head + ref.offset, end = start + ref.length * C.BYTES_PER_ELEMENT;
      if (end > bytes.length) throw new Error(`${source}: array '${key}' runs past the end of the file (truncated?)`);
      // Uint8Array's slice copies (a Node Buffer's slice is a view of the whole file).
      return [key, new C(Uint8Array.prototype.slice.call(bytes, start, end).buffer)];
    })),
  ) as unknown as Stage[];
  return { inputShape: meta.inputShape, stages };
}


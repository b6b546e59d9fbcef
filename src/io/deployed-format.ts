/**
 * The deployed-model file format (SGQM): a small JSON header describing the stages, then their
 * packed arrays, then a CRC-32 of everything before it. Pure bytes in and out (no Node APIs), so
 * the browser and Node share it.
 *
 * @example
 * const bytes = encodeDeployed(convert(model, [1, 28, 28]));
 * const back = decodeDeployed(bytes, 'model.sgq');   // a Buffer, a Uint8Array view or an ArrayBuffer
 */
import { ArrayInfo, checkDeployed, DeployedModelError, MAX_DEPTH } from '../quant/check.js';
import type { DeployedModel, Stage } from '../quant/runtime.js';
import { asBytes } from '../util/bytes.js';
import { crc32, crcHex } from '../util/crc32.js';
import { riceDecodeBits, riceEncodeBits, type RiceCoding } from '../quant/bitcode.js';

// Version 3: "SGQM", u32 version, u32 JSON length, JSON (stages with array references), zero
// padding to 4 bytes, the arrays back to back (each padded to 4 bytes), u32 CRC-32 of all the
// bytes before it; little-endian. Every array reference {$array, offset, length} must start where
// the previous one ended (in file order: a stage's keys in order, a residual stage's `body` and
// `shortcut` stage lists where they appear), and the last must end where the checksum starts.
// Version 3 added the `residual` and `gap` stages; version 2 files (without them) still load.
// A binary stage's `weights` may be stored as {$array: 'rice', offset, length, minority, count,
// shift}: `length` u32 words of Rice-coded sign positions (quant/bitcode.ts) standing for the
// packed rows, written where that is smaller (SBNN's sparse codes); older readers refuse the
// unknown array type by name.
// Version 4 added a binary stage's `levels` [alpha, beta] (SBNN's two weight values; the
// accumulator becomes alpha·Σa + (beta − alpha)·(a·w01)); it is written only by models that have
// one (others stay version 3), so an older reader refuses such a file by its version instead of
// running it with ±1 weights; a version 2/3 file holding `levels` is refused.

const MAGIC = 0x4d514753; // "SGQM"
const VERSION = 3;
const LEVELS_VERSION = 4;
const READS = [2, 3, 4];
const PREFIX = 12;
const TRAILER = 4;
type StoredArray = Uint32Array | Int32Array | Int8Array | Float32Array;
const ctors = { u32: Uint32Array, i32: Int32Array, i8: Int8Array, f32: Float32Array } as const;
type ArrayKind = keyof typeof ctors;
const kindOf = (a: StoredArray): ArrayKind => (a instanceof Uint32Array ? 'u32' : a instanceof Int32Array ? 'i32' : a instanceof Int8Array ? 'i8' : 'f32');
const pad4 = (n: number): number => (n + 3) & ~3;

/** Keys of a stage that hold nested stage lists (a residual block's body and shortcut). */
const NESTED = ['body', 'shortcut'];

/** Every stage of a model, nested ones included, in file order. */
function* allStages(stages: readonly Stage[]): Generator<Stage> {
  for (const s of stages) {
    yield s;
    for (const key of NESTED) if (key in s) yield* allStages((s as unknown as Record<string, Stage[]>)[key]!);
  }
}

/** Most dense words a Rice-coded array may stand for per stored word (bounds what a file can make us allocate). */
const MAX_RICE_EXPANSION = 64;

/**
 * [rows, bits per row] of a binary stage's packed sign weights: a binary conv holds one row per
 * filter tap over the input channels (packWeightsOHWI), other binary layers one row per output
 * over the row length (packSignRows); null for other stages or fields that are not positive integers.
 */
function signRows(s: Record<string, unknown>): [number, number] | null {
  const { op, kernel, outC, inC, k } = s;
  const ok = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= 1 << 24;
  if ((kernel !== 'binary' && kernel !== 'binary_weights') || !ok(outC) || !ok(inC) || (op !== 'conv' && op !== 'dense') || (op === 'conv' && !ok(k))) return null;
  if (op === 'dense') return [outC, inC];
  const kk = (k as number) * (k as number);
  return kernel === 'binary' ? [outC * kk, inC] : [outC, inC * kk];
}

/** How one array of a stage is stored: as is, or (binary weights) Rice-coded where that is smaller. */
function stored(stage: Stage, key: string, a: StoredArray): { array: StoredArray; coding?: RiceCoding } {
  const rows = key === 'weights' && a instanceof Uint32Array ? signRows(stage as unknown as Record<string, unknown>) : null;
  const coded = rows && riceEncodeBits(a as Uint32Array, rows[0], rows[1]);
  if (!coded) return { array: a };
  const { stream, ...coding } = coded;
  return { array: stream, coding };
}

/** Bytes of array payload of a deployed model (what summary() predicts; sparse sign codes at their coded size). */
export function payloadBytes(model: DeployedModel): number {
  let n = 0;
  for (const s of allStages(model.stages)) for (const [key, v] of Object.entries(s)) if (ArrayBuffer.isView(v)) n += pad4(stored(s, key, v as StoredArray).array.byteLength);
  return n;
}

/** Serializes a deployed model (checked first: see checkDeployed); the result is header (12 bytes + JSON) + payloadBytes(model) + 4-byte checksum. */
export function encodeDeployed(model: DeployedModel): Uint8Array {
  checkDeployed(model);
  const arrays: StoredArray[] = [];
  let offset = 0;
  const refs = (list: readonly Stage[]): unknown[] => list.map((s) =>
    Object.fromEntries(Object.entries(s).map(([key, v]) => {
      if (NESTED.includes(key)) return [key, refs(v as Stage[])];
      if (!ArrayBuffer.isView(v)) return [key, v];
      const { array: a, coding } = stored(s, key, v as StoredArray);
      arrays.push(a);
      const ref = { $array: coding ? 'rice' : kindOf(a), offset, length: a.length, ...coding };
      offset += pad4(a.byteLength);
      return [key, ref];
    })),
  );
  const stages = refs(model.stages);
  const json = new TextEncoder().encode(JSON.stringify({ inputShape: model.inputShape, stages }));
  const head = PREFIX + pad4(json.length);
  const bytes = new Uint8Array(head + offset + TRAILER);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, [...allStages(model.stages)].some((s) => 'levels' in s) ? LEVELS_VERSION : VERSION, true);
  dv.setUint32(8, json.length, true);
  bytes.set(json, PREFIX);
  let at = head;
  for (const a of arrays) {
    bytes.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at += pad4(a.byteLength);
  }
  dv.setUint32(at, crc32(bytes.subarray(0, at)), true);
  return bytes;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * Parses bytes written by encodeDeployed; `source` names the file in errors. The sizes, the
 * checksum and every header field are checked before any array is built; arrays are copies, so
 * `bytes` may be a Node Buffer, a view at any offset, or an ArrayBuffer.
 */
export function decodeDeployed(data: Uint8Array | ArrayBuffer, source = 'deployed model'): DeployedModel {
  const bytes = asBytes(data);
  const fail = (field: string, why: string): never => {
    throw new Error(`${source}: ${field}: ${why}`);
  };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < PREFIX + TRAILER || dv.getUint32(0, true) !== MAGIC) throw new Error(`${source}: not a slimgrad quantized model (missing "SGQM" magic)`);
  const version = dv.getUint32(4, true);
  if (!READS.includes(version)) fail('version', `format version ${version} is not supported (expected ${READS.join(' or ')}; convert the checkpoint again with this slimgrad)`);
  const jsonLength = dv.getUint32(8, true);
  const head = PREFIX + pad4(jsonLength);
  if (head + TRAILER > bytes.length) fail('header length', `${jsonLength} bytes of header do not fit in the file's ${bytes.length} bytes (truncated?)`);
  const end = bytes.length - TRAILER;
  const stored = dv.getUint32(end, true), computed = crc32(bytes.subarray(0, end));
  if (stored !== computed) fail('checksum', `stored CRC-32 ${crcHex(stored)} but the contents give ${crcHex(computed)}: the file is corrupt or truncated`);

  let meta: Json;
  try {
    meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREFIX, PREFIX + jsonLength))) as Json;
  } catch (e) {
    return fail('header', `not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(meta)) return fail('header', 'expected a JSON object');
  const { inputShape, stages } = meta;
  if (!Array.isArray(inputShape) || inputShape.length === 0 || !inputShape.every((d) => Number.isInteger(d) && (d as number) >= 1)) {
    fail('inputShape', `expected a list of positive integers, got ${JSON.stringify(inputShape)?.slice(0, 80)}`);
  }
  if (!Array.isArray(stages) || stages.length === 0) fail('stages', 'expected a non-empty list');

  // First pass: every array reference must lie back to back inside the payload. Stages are copied
  // with an ArrayInfo in place of each array, so the shapes are checked before any array is built.
  const payload = end - head;
  let next = 0;
  const refs: { stage: Record<string, unknown>; key: string; kind: ArrayKind; offset: number; length: number; rice?: { rows: [number, number]; coding: RiceCoding; field: string } }[] = [];
  const walk = (list: Json[], at: string, depth: number): Record<string, unknown>[] => list.map((s, i) => {
    const field = `${at}[${i}]`;
    if (!isObject(s) || typeof s.op !== 'string') fail(field, 'expected an object with a string "op"');
    const copy: Record<string, unknown> = {};
    if ('levels' in (s as Record<string, Json>) && version < LEVELS_VERSION) fail(`${field}.levels`, `weight levels need format version ${LEVELS_VERSION}, the file says ${version}`);
    for (const [key, v] of Object.entries(s as Record<string, Json>)) {
      if (NESTED.includes(key)) {
        if (!Array.isArray(v)) fail(`${field}.${key}`, 'expected a list of stages');
        if (depth >= MAX_DEPTH) fail(`${field}.${key}`, `residual blocks nested deeper than ${MAX_DEPTH}`);
        copy[key] = walk(v as Json[], `${field}.${key}`, depth + 1);
        continue;
      }
      copy[key] = v;
      if (!isObject(v) || !('$array' in v)) continue;
      const isRice = v.$array === 'rice';
      const kind = (isRice ? 'u32' : v.$array) as ArrayKind;
      if (typeof kind !== 'string' || !Object.hasOwn(ctors, kind)) fail(`${field}.${key}`, `unknown array type ${JSON.stringify(v.$array)} (expected ${Object.keys(ctors).join(', ')}, rice)`);
      const { offset, length } = v;
      if (!Number.isSafeInteger(length) || (length as number) < 0) fail(`${field}.${key}.length`, `expected a non-negative integer, got ${JSON.stringify(length)}`);
      if (offset !== next) fail(`${field}.${key}.offset`, `expected ${next} (arrays are stored back to back), got ${JSON.stringify(offset)}`);
      const bytesNeeded = (length as number) * ctors[kind].BYTES_PER_ELEMENT;
      if (next + bytesNeeded > payload) fail(`${field}.${key}.length`, `${length} ${kind} values need bytes ${head + next}..${head + next + bytesNeeded}, past the payload's end at ${end}`);
      let rice: { rows: [number, number]; coding: RiceCoding; field: string } | undefined;
      if (isRice) {
        const rows = key === 'weights' ? signRows(s as Record<string, unknown>) : null;
        if (!rows) fail(`${field}.${key}`, "a 'rice' array holds the weights of a binary conv/dense stage only");
        const dense = rows![0] * Math.ceil(rows![1] / 32);
        if (dense > MAX_RICE_EXPANSION * ((length as number) + 1)) fail(`${field}.${key}.length`, `${length} coded words cannot stand for ${dense} packed words (at most ${MAX_RICE_EXPANSION}x)`);
        rice = { rows: rows!, coding: { minority: v.minority as 0 | 1, count: v.count as number, shift: v.shift as number }, field: `${field}.${key}` };
        copy[key] = new ArrayInfo('u32', dense);
      } else copy[key] = new ArrayInfo(kind, length as number);
      refs.push({ stage: copy, key, kind, offset: next, length: length as number, rice });
      next += pad4(bytesNeeded);
    }
    return copy;
  });
  const out = walk(stages as Json[], 'stages', 0);
  if (next !== payload) fail('payload', `the header describes ${next} bytes of arrays, the file holds ${payload}`);
  const model = { inputShape: inputShape as number[], stages: out as unknown as Stage[] };
  const check = () => {
    try {
      checkDeployed(model);
    } catch (e) {
      if (!(e instanceof DeployedModelError)) throw e;
      fail(e.field, e.message.slice(e.field.length + 2));
    }
  };
  check();
  for (const r of refs) {
    const start = head + r.offset;
    // A copy (the Uint8Array constructor copies a view's bytes): an aligned buffer of its own.
    const copy = new Uint8Array(bytes.subarray(start, start + r.length * ctors[r.kind].BYTES_PER_ELEMENT));
    const a = new ctors[r.kind](copy.buffer, 0, r.length);
    if (!r.rice) r.stage[r.key] = a;
    else {
      try {
        r.stage[r.key] = riceDecodeBits(a as Uint32Array, r.rice.rows[0], r.rice.rows[1], r.rice.coding);
      } catch (e) {
        fail(r.rice.field, (e as Error).message);
      }
    }
  }
  check();
  return model;
}

function isObject(v: Json | undefined): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

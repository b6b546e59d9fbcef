/**
 * The loader fuzz harness: from a valid file, generate hostile variants (truncations, bit flips,
 * overwritten bytes, inserted/deleted/duplicated ranges, header fields set to 0 / max / huge,
 * and each format's own specials: wrong magic, dtype or order, huge dimensions, decompression
 * bombs) and check that each case ends in
 *   - `rejected`: the format's error (DataFormatError by default) naming the file, message short;
 *   - `same`: a result equal to the original's;
 *   - `changed`: a different result that is what the mutated file really says, as an independent
 *     reference decoder (or, for CSV, independent invariants) confirms;
 * and never in a JavaScript engine error or any other exception (`wrong-error`), a different
 * result nobody can vouch for (`silent-change`), or a slow case (`slow`). Hangs and crashes are
 * caught one level up: `npm run fuzz` (test/fuzz/run.ts) runs each format in a child process with
 * a timeout.
 *
 * PLUG-IN POINT: a new format (the deployed `.sgq` model, checkpoints, ONNX, text data) is one
 * `FuzzFormat` entry in FORMATS (test/fuzz/formats.ts): a valid-value generator, an independent
 * writer, the library's bytes-in loader, an equality check, and optionally a reference decoder,
 * the offsets of its numeric header fields and format-specific mutations. `npm test`
 * (test/fuzz/loaders.test.ts) and `npm run fuzz` pick it up from there.
 */
import fc from 'fast-check';
import { DataFormatError } from '../../src/data/index.js';
import { concatBytes } from '../data/fixtures.js';

/** A numeric field of the valid file (a length, a dimension, a code) for the `field` mutation. */
export interface Field {
  offset: number;
  width: 1 | 2 | 4 | 8;
  littleEndian: boolean;
}

/** A format-specific mutation of a valid value (a bomb, a wrong dtype...); `seed` drives its choices. */
export interface Special<V> {
  name: string;
  make(value: V, seed: number): Uint8Array;
}

export interface FuzzFormat<V = any, R = any> {
  /** Name in the table ('idx', 'npz', ...). */
  name: string;
  /** The file name the loader is given; a rejection must name it. */
  file: string;
  /** Valid values (small: each case should take well under a millisecond). */
  valid: fc.Arbitrary<V>;
  /** An independent writer of the format (from the format description, not the library). */
  encode(value: V): Uint8Array;
  /** The library's loader, bytes in (pure `parseX(bytes, name)` form). */
  load(bytes: Uint8Array, file: string): R;
  /** Whether the loader's result holds exactly `value`. */
  equal(result: R, value: V): boolean;
  /** An independent decoder of (mutated) bytes: the value they encode, undefined when invalid. */
  reference?(bytes: Uint8Array): V | undefined;
  /** For formats without a reference decoder: invariants a faithful result of `bytes` must meet. */
  consistent?(result: R, bytes: Uint8Array): boolean;
  /** The format's own error; default: a DataFormatError. */
  isError?(e: unknown): boolean;
  /** Numeric header fields of a valid file. */
  fields?(bytes: Uint8Array): Field[];
  specials?: Special<V>[];
}

export const OUTCOMES = ['rejected', 'same', 'changed', 'wrong-error', 'silent-change', 'slow'] as const;
export type Outcome = (typeof OUTCOMES)[number];
export const FAILURES: ReadonlySet<Outcome> = new Set(['wrong-error', 'silent-change', 'slow']);

/** A case taking more CPU time than this fails (inputs are at most ~120 KiB, bombs are capped at 1 MiB). */
export const SLOW_MS = 1000;
/** A rejection message longer than this fails: errors must be short whatever the header declares. */
export const MAX_MESSAGE = 400;

export type Plan =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; bits: number[] }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'append'; bytes: number[] }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'duplicate'; at: number; length: number }
  | { kind: 'field'; index: number; value: bigint }
  | { kind: 'special'; index: number; seed: number };

const FIELD_VALUES = [0n, 1n, 0x7fn, 0xffn, 0x7fffn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];

/** Mutation plans; `specials` of the format get a weight like the generic kinds together. */
export function planArbitrary(format: FuzzFormat): fc.Arbitrary<Plan> {
  const pos = fc.nat({ max: 1 << 20 });
  const kinds: fc.WeightedArbitrary<Plan>[] = [
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: pos }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), bits: fc.array(fc.nat({ max: 1 << 23 }), { minLength: 1, maxLength: 4 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('byte' as const), at: pos, value: fc.nat({ max: 255 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('append' as const), bytes: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 64 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: pos, length: fc.integer({ min: 1, max: 64 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at: pos, length: fc.integer({ min: 1, max: 64 }) }) },
  ];
  if (format.fields) {
    const value = fc.oneof(fc.constantFrom(...FIELD_VALUES), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.integer({ min: -2, max: 2 }).map((d) => BigInt(d) - 100n));
    kinds.push({ weight: 3, arbitrary: fc.record({ kind: fc.constant('field' as const), index: fc.nat(), value }) });
  }
  if (format.specials?.length) kinds.push({ weight: 4, arbitrary: fc.record({ kind: fc.constant('special' as const), index: fc.nat(), seed: fc.nat() }) });
  return fc.oneof(...kinds);
}

/** The name a plan is counted under (specials by their own name). */
export function planName(format: FuzzFormat, plan: Plan): string {
  return plan.kind === 'special' ? format.specials![plan.index % format.specials!.length]!.name : plan.kind;
}

/** Applies a plan to the valid file `bytes` of `value`. */
export function applyPlan<V>(format: FuzzFormat<V>, value: V, bytes: Uint8Array, plan: Plan): Uint8Array {
  const n = bytes.length;
  switch (plan.kind) {
    case 'truncate':
      return bytes.slice(0, n === 0 ? 0 : plan.at % n);
    case 'flip': {
      const out = bytes.slice();
      if (n) for (const b of plan.bits) out[(b >> 3) % n]! ^= 1 << (b & 7);
      return out;
    }
    case 'byte': {
      const out = bytes.slice();
      if (n) out[plan.at % n] = plan.value;
      return out;
    }
    case 'append':
      return concat(bytes, Uint8Array.from(plan.bytes));
    case 'delete': {
      const at = n ? plan.at % n : 0;
      return concat(bytes.subarray(0, at), bytes.subarray(at + plan.length));
    }
    case 'duplicate': {
      const at = n ? plan.at % n : 0;
      return concat(bytes.subarray(0, at + plan.length), bytes.subarray(at));
    }
    case 'field':
      return setField(bytes, format.fields!(bytes), plan.index, plan.value);
    case 'special':
      return format.specials![plan.index % format.specials!.length]!.make(value, plan.seed);
  }
}

/** Overwrites field `index % fields.length` with `value` (masked to its width). */
export function setField(bytes: Uint8Array, fields: Field[], index: number, value: bigint): Uint8Array {
  const out = bytes.slice();
  if (!fields.length) return out;
  const f = fields[index % fields.length]!;
  if (f.offset + f.width > out.length) return out;
  const v = BigInt.asUintN(f.width * 8, value);
  for (let i = 0; i < f.width; i++) {
    const byte = Number((v >> BigInt(8 * i)) & 0xffn);
    out[f.offset + (f.littleEndian ? i : f.width - 1 - i)] = byte;
  }
  return out;
}

export const concat = (...parts: Uint8Array[]): Uint8Array => concatBytes(parts);

export interface CaseResult {
  outcome: Outcome;
  mutation: string;
  ms: number;
  /** For failures: what happened. */
  detail?: string;
}

const defaultIsError = (e: unknown) => e instanceof DataFormatError;

/** CPU milliseconds since `start` (the machine may be shared: wall time would measure the neighbours). */
function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

/** Runs one case: encode `value`, apply `plan`, load, classify (`ms`: the load's CPU time). */
export function runCase<V, R>(format: FuzzFormat<V, R>, value: V, plan: Plan): CaseResult {
  const mutation = planName(format, plan);
  const bytes = applyPlan(format, value, format.encode(value), plan);
  const start = process.cpuUsage();
  let result: R;
  try {
    result = format.load(bytes, format.file);
  } catch (e) {
    const ms = cpuMsSince(start);
    const err = e as Error;
    const ok = (format.isError ?? defaultIsError)(e) && err.message.includes(format.file) && err.message.length <= MAX_MESSAGE;
    if (!ok) return { outcome: 'wrong-error', mutation, ms, detail: `${err?.name}: ${String(err?.message).slice(0, 300)}\n${err?.stack?.split('\n').slice(1, 4).join('\n')}` };
    return { outcome: ms > SLOW_MS ? 'slow' : 'rejected', mutation, ms };
  }
  const ms = cpuMsSince(start);
  if (ms > SLOW_MS) return { outcome: 'slow', mutation, ms };
  if (format.equal(result, value)) return { outcome: 'same', mutation, ms };
  const ref = format.reference?.(bytes);
  if (ref !== undefined && format.equal(result, ref)) return { outcome: 'changed', mutation, ms };
  if (format.consistent?.(result, bytes)) return { outcome: 'changed', mutation, ms };
  return { outcome: 'silent-change', mutation, ms, detail: `accepted ${bytes.length} bytes with a result that neither equals the original nor what the bytes say` };
}

/** Same-value comparison for results: typed arrays element by element with Object.is (NaN = NaN). */
export function sameNumbers(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A small seeded generator for the choices inside specials. */
export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

/** A generic random mutation of `bytes` (for specials that mutate an inner stream before re-wrapping it). */
export function mutateInner(bytes: Uint8Array, seed: number, fields: Field[] = []): Uint8Array {
  const r = rng(seed);
  const n = Math.max(1, bytes.length);
  switch (r(fields.length ? 5 : 4)) {
    case 0:
      return bytes.slice(0, r(n));
    case 1: {
      const out = bytes.slice();
      for (let k = 1 + r(3); k > 0 && out.length; k--) out[r(out.length)]! ^= 1 << r(8);
      return out;
    }
    case 2:
      return concat(bytes, Uint8Array.from({ length: 1 + r(32) }, () => r(256)));
    case 3: {
      const at = r(n);
      return concat(bytes.subarray(0, at), bytes.subarray(at + 1 + r(16)));
    }
    default:
      return setField(bytes, fields, r(fields.length), FIELD_VALUES[r(FIELD_VALUES.length)]!);
  }
}

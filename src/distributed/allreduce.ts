/**
 * Ring all-reduce of a flat float32 vector across data-parallel replicas (reduce-scatter, then
 * all-gather; each replica sends 2(R-1)/R of the vector). Optionally compressed to 8 or 4 bits
 * with error feedback (AC-SGD's end-to-end compression): every compressed send adds the
 * sender's residual of that chunk first and keeps the new quantization error as the residual.
 * Every replica ends with the same bits: all-gather forwards the owner's encoded chunk unchanged
 * and the owner keeps the decoded value too.
 */
import { blockLayout, fixpointDecode, fixpointEncode } from './codec.js';
import type { Link } from './transport.js';

export interface Ring {
  /** This replica's index and the ring size. */
  index: number;
  size: number;
  next: Link;
  prev: Link;
}

/** Values per fp16 scale in compressed all-reduce. */
export const REDUCE_BLOCK = 256;

/** Residuals kept between steps for compressed all-reduce (one per phase). */
export class ErrorFeedback {
  readonly scatter: Float32Array;
  readonly gather: Float32Array;
  constructor(n: number) {
    this.scatter = new Float32Array(n);
    this.gather = new Float32Array(n);
  }
}

export interface ReduceOptions {
  /** 0 = fp32, else 8 or 4 bits. */
  bits: number;
  step: number;
  feedback?: ErrorFeedback;
}

function quantizeWithFeedback(chunk: Float32Array, residual: Float32Array, bits: number): Uint8Array {
  const w = new Float32Array(chunk.length);
  for (let i = 0; i < w.length; i++) w[i] = chunk[i]! + residual[i]!;
  const layout = blockLayout(w.length, REDUCE_BLOCK);
  const payload = fixpointEncode(w, layout, bits);
  const deq = new Float32Array(w.length);
  fixpointDecode(payload, layout, bits, deq);
  for (let i = 0; i < w.length; i++) residual[i] = w[i]! - deq[i]!;
  chunk.set(deq);
  return payload;
}

/** Replaces `v` by the mean of every replica's `v`. */
export async function ringAllReduce(v: Float32Array, ring: Ring, o: ReduceOptions): Promise<void> {
  const R = ring.size;
  if (R === 1) return;
  if (o.bits !== 0 && o.bits !== 4 && o.bits !== 8) throw new Error(`all-reduce: bits must be 0 (fp32), 4 or 8, got ${o.bits}`);
  if (o.bits && !o.feedback) throw new Error('all-reduce: compressed all-reduce needs an ErrorFeedback');
  const bounds = Array.from({ length: R + 1 }, (_, i) => Math.floor((i * v.length) / R));
  const chunk = (c: number) => v.subarray(bounds[c]!, bounds[c + 1]!);
  const mod = (i: number) => ((i % R) + R) % R;
  const where = (phase: string, c: number) => `all-reduce step ${o.step} (${phase}, chunk ${c}) from ${ring.prev.peer}`;
  const expect = async (phase: string, c: number) => {
    const f = await ring.prev.recv();
    const h = f.header;
    if (h.kind !== 'reduce' || h.phase !== phase || h.chunk !== c || h.step !== o.step) {
      throw new Error(`${where(phase, c)}: got a '${h.kind}' frame (phase ${h.phase}, chunk ${h.chunk}, step ${h.step}) instead; the replicas are out of step`);
    }
    return f.payload;
  };
  const decode = (payload: Uint8Array, n: number, phase: string, c: number): Float32Array => {
    if (!o.bits) {
      if (payload.length !== 4 * n) throw new Error(`${where(phase, c)}: ${payload.length} bytes, expected ${4 * n}`);
      return new Float32Array(payload.slice().buffer);
    }
    const out = new Float32Array(n);
    fixpointDecode(payload, blockLayout(n, REDUCE_BLOCK), o.bits, out);
    return out;
  };
  const header = (phase: string, c: number) => ({ kind: 'reduce' as const, step: o.step, phase, chunk: c, codec: o.bits ? 'fixpoint' : 'fp32', bits: o.bits || 32, shape: [bounds[c + 1]! - bounds[c]!] });
  // Reduce-scatter: after R-1 rounds replica i holds the full sum of chunk i+1.
  for (let s = 0; s < R - 1; s++) {
    const send = mod(ring.index - s), recv = mod(ring.index - s - 1);
    const src = chunk(send);
    const payload = o.bits
      ? quantizeWithFeedback(src.slice(), o.feedback!.scatter.subarray(bounds[send]!, bounds[send + 1]!), o.bits)
      : new Uint8Array(src.slice().buffer);
    const [, got] = await Promise.all([ring.next.send(header('rs', send), payload), expect('rs', recv)]);
    const dst = chunk(recv);
    const add = decode(got, dst.length, 'rs', recv);
    for (let i = 0; i < dst.length; i++) dst[i] = dst[i]! + add[i]!;
  }
  // All-gather: the owner's chunk (encoded once) travels around the ring.
  const own = mod(ring.index + 1);
  let outgoing = o.bits
    ? quantizeWithFeedback(chunk(own), o.feedback!.gather.subarray(bounds[own]!, bounds[own + 1]!), o.bits)
    : new Uint8Array(chunk(own).slice().buffer);
  for (let s = 0; s < R - 1; s++) {
    const send = mod(ring.index + 1 - s), recv = mod(ring.index - s);
    const [, got] = await Promise.all([ring.next.send(header('ag', send), outgoing), expect('ag', recv)]);
    chunk(recv).set(decode(got, bounds[recv + 1]! - bounds[recv]!, 'ag', recv));
    outgoing = got;
  }
  const inv = 1 / R;
  for (let i = 0; i < v.length; i++) v[i] = v[i]! * inv;
}

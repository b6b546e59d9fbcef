/**
 * The fake-quantization kernels of the contract on kernels/fakequant.ts: kind codes, each map's
 * parameters packed as float64 word pairs (the pool passes i32 words only), argument checks and
 * the split over threads (elementwise, so results do not depend on the thread count). Float32
 * only; float64 (gradient checks) runs the reference.
 */
import { Tensor } from '../../core/tensor.js';
import type { FakeQuantAttrs } from '../../quant/ops.js';
import type { Kernels, WorkKind } from '../kernels.js';
import { referenceKernels } from '../reference/index.js';
import type { WasmKernels } from './kernels.js';
import type { PoolOp } from './pool.js';

/** Kind codes of kernels/fakequant.ts, in its order. */
const FAKE_QUANT_KINDS: readonly FakeQuantAttrs['kind'][] = [
  'sign', 'approx_sign', 'swish_sign', 'heaviside', 'tern', 'dorefa_act', 'dorefa_weight', 'pact',
  'lsq', 'ede', 'dte', 'fourier', 'nested', 'ttq_pos', 'ttq_neg', 'pruned_tern',
];

/** Maps whose gradient evaluates a transcendental function per element (the rest cost about a copy). */
const TRANSCENDENTAL = new Set<FakeQuantAttrs['kind']>(['swish_sign', 'dorefa_weight', 'ede', 'dte', 'fourier']);

/** A map's parameters a0..a4 in the kernel's order (a clip of null as (0, _), a given one as (1, clip)). */
function parameters(a: FakeQuantAttrs): number[] {
  const clip = (c: number | null): number[] => (c === null ? [0, 0] : [1, c]);
  switch (a.kind) {
    case 'sign': case 'heaviside': return clip(a.clip);
    case 'tern': return [a.threshold, ...clip(a.clip)];
    case 'swish_sign': return [a.beta];
    case 'dorefa_act': case 'pact': return [a.levels];
    case 'dorefa_weight': return [a.levels, a.maxTanh];
    case 'lsq': return [a.qn, a.qp, a.gradScale];
    case 'ede': return [a.t, a.k];
    case 'dte': return [a.stage, a.width, a.t, a.k, a.sigma];
    case 'fourier': return [a.omega, a.terms];
    case 'nested': return [a.drop];
    case 'ttq_pos': case 'ttq_neg': case 'pruned_tern': return [a.threshold];
    default: return [];
  }
}

const words = (() => {
  const f = new Float64Array(1), w = new Int32Array(f.buffer);
  return (v: number): [number, number] => {
    f[0] = v;
    return [w[0]!, w[1]!];
  };
})();

/** The kernels' trailing arguments: a0..a4 then p, each as (low, high) words. */
function packed(a: FakeQuantAttrs, p: number): number[] {
  const v = parameters(a);
  const out: number[] = [];
  for (let i = 0; i < 5; i++) out.push(...words(v[i] ?? 0));
  out.push(...words(p));
  return out;
}

function usable(...ts: (Tensor | null)[]): boolean {
  return ts.every((t) => !t || (t.dtype === 'float32' && t.isContiguous()));
}

function check(op: string, x: Tensor, ts: Record<string, Tensor | null>): void {
  x.assertAlive(op);
  for (const role in ts) {
    const t = ts[role];
    if (!t) continue;
    t.assertAlive(op);
    if (t.size !== x.size) throw new RangeError(`${op}: ${role} has ${t.size} elements, x has ${x.size}`);
  }
}

/** The fake-quantization kernels of the engine module, bound by name next to WasmKernels (bindKernels). */
export class FakeQuantWasmKernels implements Pick<Kernels, 'fakeQuant' | 'fakeQuantGrad' | 'sin'> {
  constructor(private readonly engine: WasmKernels) {}

  private kind(a: FakeQuantAttrs): number {
    const code = FAKE_QUANT_KINDS.indexOf(a.kind);
    if (code < 0) throw new RangeError(`fakeQuant: unknown quantizer kind '${a.kind}'`);
    return code;
  }

  private work(a: FakeQuantAttrs): WorkKind {
    return TRANSCENDENTAL.has(a.kind) ? 'unary' : 'elementwise';
  }

  fakeQuant(x: Tensor, out: Tensor, a: FakeQuantAttrs, p: number): void {
    if (!usable(x, out)) return referenceKernels.fakeQuant(x, out, a, p);
    check('fakeQuant', x, { out });
    const kind = this.kind(a), args = packed(a, p);
    this.engine.split('fakeQuant' as PoolOp, x.size, this.engine.splitAt('elementwise'), 16, (lo, hi) => [kind, x.ptr + 4 * lo, out.ptr + 4 * lo, hi - lo, ...args]);
  }

  fakeQuantGrad(x: Tensor, g: Tensor | null, gx: Tensor | null, gp: Tensor | null, a: FakeQuantAttrs, p: number): void {
    // The kernel's sines hold their tolerance for Fourier arguments 2nωx up to ~100 (|x| ≤ 1).
    const wide = a.kind === 'fourier' && !(2 * a.terms * Math.abs(a.omega) <= 100);
    if (wide || !usable(x, g, gx, gp)) return referenceKernels.fakeQuantGrad(x, g, gx, gp, a, p);
    check('fakeQuantGrad', x, { g, gx, gp });
    if (!gx && !gp) return;
    const kind = this.kind(a), args = packed(a, p), flags = (g ? 1 : 0) | (gx ? 2 : 0) | (gp ? 4 : 0);
    const at = (t: Tensor | null, lo: number): number => (t ? t.ptr + 4 * lo : 0);
    this.engine.split('fakeQuantGrad' as PoolOp, x.size, this.engine.splitAt(this.work(a)), 16, (lo, hi) => [kind, x.ptr + 4 * lo, at(g, lo), at(gx, lo), at(gp, lo), hi - lo, flags, ...args]);
  }

  sin(x: Tensor, out: Tensor, phase: number): void {
    if (!usable(x, out)) return referenceKernels.sin(x, out, phase);
    check('sin', x, { out });
    this.engine.assertNotRecording('sin');
    const status = Tensor.empty([1], 'int32');
    try {
      status.data()[0] = 0;
      this.engine.split('sin' as PoolOp, x.size, this.engine.splitAt('unary'), 16, (lo, hi) => [x.ptr + 4 * lo, out.ptr + 4 * lo, hi - lo, ...words(phase), status.ptr]);
      if (status.data()[0]) referenceKernels.sin(x, out, phase);
    } finally {
      status.dispose();
    }
  }
}

/**
 * Finite-difference gradient checking (float64, central differences), the oracle for every
 * op's backward. The function's outputs are projected on fixed random weights so that one
 * scalar covers the whole Jacobian.
 */
import type { FloatArray } from '../core/dtype.js';
import { scope } from '../core/scope.js';
import { Tensor } from '../core/tensor.js';
import { mul, sum, add } from '../ops/index.js';
import { Rng } from '../util/rng.js';
import { grad } from './backward.js';

export interface GradcheckResult {
  ok: boolean;
  /** Largest |analytic - numeric| / (atol + rtol * |numeric|) over all checked elements (<= 1 passes). */
  worst: number;
  /** Description of the worst element. */
  detail: string;
}

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  seed?: number;
}

function project(outs: Tensor[], weights: Tensor[]): Tensor {
  let total: Tensor | null = null;
  outs.forEach((o, i) => {
    if (o.dtype !== 'float64') return;
    const s = sum(mul(o, weights[i]!));
    total = total ? add(total, s) : s;
  });
  if (!total) throw new Error('gradcheck: the function has no float64 output');
  return total;
}

/**
 * Checks d(fn)/d(input) for every input with requiresGrad. Inputs must be float64 (the float
 * ones) and are restored after each perturbation.
 */
export function gradcheck(fn: (...inputs: Tensor[]) => Tensor | Tensor[], inputs: Tensor[], opts: GradcheckOptions = {}): GradcheckResult {
  const eps = opts.eps ?? 1e-6, atol = opts.atol ?? 1e-6, rtol = opts.rtol ?? 1e-4;
  const rng = new Rng(opts.seed ?? 1234, 99);
  const wrt = inputs.filter((t) => t.requiresGrad);
  for (const t of wrt) if (t.dtype !== 'float64') throw new Error(`gradcheck: input #${t.id} must be float64, got ${t.dtype}`);
  return scope(() => {
    const call = (): Tensor[] => {
      const r = fn(...inputs);
      return Array.isArray(r) ? r : [r];
    };
    const first = call();
    const weights = first.map((o) => {
      const w = Tensor.empty(o.shape, o.dtype);
      const wv = w.data();
      for (let i = 0; i < wv.length; i++) wv[i] = rng.normal();
      return w;
    });
    const analytic = grad(project(first, weights), wrt, { allowUnused: true });
    // Recording stays on: the function may itself take gradients (second-order checks).
    const evalAt = (): number => scope(() => project(call(), weights).item());
    let worst = 0, detail = 'no elements';
    wrt.forEach((t, ti) => {
      const a = analytic[ti] ? (analytic[ti]!.values() as FloatArray) : new Float64Array(t.size);
      for (let i = 0; i < t.size; i++) {
        const data = t.data() as FloatArray;
        const orig = data[i]!;
        data[i] = orig + eps;
        const up = evalAt();
        (t.data() as FloatArray)[i] = orig - eps;
        const down = evalAt();
        (t.data() as FloatArray)[i] = orig;
        const numeric = (up - down) / (2 * eps);
        const err = Math.abs(a[i]! - numeric) / (atol + rtol * Math.abs(numeric));
        if (err > worst || detail === 'no elements') {
          worst = Math.max(worst, err);
          detail = `input ${inputs.indexOf(t)} element ${i}: analytic ${a[i]}, numeric ${numeric}`;
        }
      }
    });
    return { ok: worst <= 1, worst, detail };
  });
}

/**
 * Hessian-guided mixed precision (HAWQ-V2): per-layer sensitivity Ω_l(b) = Tr(H_l)/n_l ·
 * ‖Q_b(W_l) − W_l‖², with Tr(H_l) estimated by Hutchinson (mean of vᵀHv over Rademacher v) on
 * the cross-entropy against the float model's own predictions (calibration data needs no labels).
 * Hessian-vector products come from double backward, `grad(..., { createGraph: true })`, when
 * every op of the model has a second-order backward; otherwise (slimgrad's conv2d, pools and
 * batch norm are first-order only) from central differences of first-order gradients,
 * Hv ≈ (∇L(w + εv) − ∇L(w − εv))/2ε. Bits per layer then minimize ΣΩ_l under a weight-size budget.
 *
 * @example
 * const sens = hessianTraces(model, calib, [64, 1, 28, 28]);
 * const bits = allocateBits(model, sens, { avgBits: 4 });   // e.g. [8, 4, 3, 3, 8]
 * const result = ptq(model, calib, [256, 1, 28, 28], { wBits: bits, aBits: 8 });
 */
import { keep, scope } from '../../core/scope.js';
import { fromValues, type Tensor } from '../../core/tensor.js';
import { grad } from '../../autograd/backward.js';
import { add, logSoftmax, mul, mulScalar, sum } from '../../ops/index.js';
import type { Module } from '../../nn/module.js';
import { Rng } from '../../util/rng.js';
import { observeRange, quantizeWeights } from './observers.js';
import { quantizableLayers } from './ptq.js';

export interface LayerSensitivity {
  path: string;
  /** Weights in the layer. */
  params: number;
  /** Hutchinson estimate of the trace of the loss Hessian w.r.t. the layer's weights. */
  trace: number;
  hvp: 'autograd' | 'finite-difference';
}

export interface TraceOptions {
  /** Rademacher samples (default 8). */
  samples?: number;
  seed?: number;
  /** 'auto' (default): double backward when the model supports it, else finite differences. */
  hvp?: 'auto' | 'autograd' | 'finite-difference';
  /** Finite-difference step (default 1e-4). */
  eps?: number;
}

export function hessianTraces(model: Module, x: Float32Array, shape: number[], o: TraceOptions = {}): LayerSensitivity[] {
  const layers = quantizableLayers(model);
  const ws = layers.map((l) => l.weight);
  const samples = o.samples ?? 8, rng = new Rng(o.seed ?? 0, 0x4e55);
  const wasTraining = model.training;
  model.eval();
  const input = keep(fromValues(x, shape));
  let onehot: Tensor | null = null;
  const loss = (): Tensor => {
    const z = model.call(input);
    if (!onehot) {
      const v = z.values(), c = z.shape[1]!, oh = new Float32Array(v.length);
      for (let r = 0; r < z.shape[0]!; r++) {
        const row = Array.from(v.subarray(r * c, (r + 1) * c));
        oh[r * c + row.indexOf(Math.max(...row))] = 1;
      }
      onehot = keep(fromValues(oh, z.shape));
    }
    return mulScalar(sum(mul(onehot, logSoftmax(z, 1))), -1 / shape[0]!);
  };
  const rademacher = () => ws.map((w) => Float32Array.from({ length: w.size }, () => (rng.uniform() < 0.5 ? -1 : 1)));
  const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
    return s;
  };
  const traces = new Float64Array(layers.length);
  let mode: LayerSensitivity['hvp'] = o.hvp === 'finite-difference' ? 'finite-difference' : 'autograd';
  try {
    if (mode === 'autograd') {
      scope(() => {
        const gs = grad(loss(), ws, { createGraph: true }) as Tensor[];
        for (let s = 0; s < samples; s++) {
          scope(() => {
            const v = rademacher();
            const gv = gs.map((g, l) => sum(mul(g, fromValues(v[l]!, g.shape)))).reduce((a, b) => add(a, b));
            const hv = grad(gv, ws, { retainGraph: true, allowUnused: true });
            hv.forEach((h, l) => (traces[l] += h ? dot(v[l]!, h.values()) / samples : 0));
            hv.forEach((h) => h?.dispose());
          });
        }
        gs.forEach((g) => g.dispose());
      });
    }
  } catch (e) {
    if (o.hvp === 'autograd' || !/createGraph/.test((e as Error).message)) throw e;
    mode = 'finite-difference';
    traces.fill(0);
  }
  if (mode === 'finite-difference') {
    const base = ws.map((w) => Float32Array.from(w.values()));
    const gradAt = (v: Float32Array[], eps: number) => {
      ws.forEach((w, l) => {
        w.data().set(Float32Array.from(base[l]!, (b, i) => b + eps * v[l]![i]!));
        w.bumpVersion();
      });
      return scope(() => (grad(loss(), ws) as Tensor[]).map((g) => Float32Array.from(g.values())));
    };
    for (let s = 0; s < samples; s++) {
      const v = rademacher();
      const eps = o.eps ?? 1e-4;
      const gp = gradAt(v, eps), gm = gradAt(v, -eps);
      layers.forEach((_, l) => {
        let t = 0;
        for (let i = 0; i < v[l]!.length; i++) t += (v[l]![i]! * (gp[l]![i]! - gm[l]![i]!)) / (2 * eps);
        traces[l] += t / samples;
      });
    }
    ws.forEach((w, l) => {
      w.data().set(base[l]!);
      w.bumpVersion();
    });
  }
  input.dispose();
  (onehot as Tensor | null)?.dispose();
  model.train(wasTraining);
  return layers.map((l, i) => ({ path: l.path, params: l.weight.size, trace: traces[i]!, hvp: mode }));
}

export interface BitBudget {
  /** Average bits per weight over the quantized layers. */
  avgBits?: number;
  /** Budget on the packed weight codes, in KB (1000 bytes). */
  sizeKB?: number;
  /** Candidate bit-widths (default 3, 4, 5, 6, 8: 2-bit weights cost more accuracy than the trace predicts). */
  candidates?: number[];
}

/**
 * Bits per layer minimizing Σ Tr(H_l)/n_l·‖Q_b(W_l) − W_l‖² with Σ n_l·b_l within the budget:
 * greedy from the widest candidate, each step lowering the layer whose next-lower width adds the
 * least sensitivity per bit saved, then raising layers again while the budget allows.
 */
export function allocateBits(model: Module, sens: LayerSensitivity[], budget: BitBudget): number[] {
  const layers = quantizableLayers(model);
  const cands = [...(budget.candidates ?? [3, 4, 5, 6, 8])].sort((a, b) => b - a);
  const total = layers.reduce((s, l) => s + l.weight.size, 0);
  const limit = budget.sizeKB !== undefined ? budget.sizeKB * 8000 : budget.avgBits !== undefined ? budget.avgBits * total : NaN;
  if (!(limit > 0)) throw new RangeError('allocateBits: give a positive avgBits or sizeKB');
  if (limit < cands.at(-1)! * total) throw new RangeError(`allocateBits: the budget (${(limit / total).toFixed(2)} bits per weight) is below the narrowest candidate (${cands.at(-1)} bits)`);
  const omega = layers.map((l, i) => {
    const w = l.weight.values() as Float32Array, outC = l.weight.shape[0]!;
    return cands.map((b) => {
      const { codes, step } = quantizeWeights(w, outC, b, observeRange(w, l.weight.shape, { kind: 'mse', bits: b, perChannel: true, signed: true }));
      const per = w.length / outC;
      let e = 0;
      for (let k = 0; k < w.length; k++) e += (codes[k]! * step[Math.floor(k / per)]! - w[k]!) ** 2;
      return (Math.max(0, sens[i]!.trace) / l.weight.size) * e;
    });
  });
  const choice = layers.map(() => 0);
  let used = cands[0]! * total;
  while (used > limit) {
    let best = -1, bestCost = Infinity;
    layers.forEach((l, i) => {
      const c = choice[i]!;
      if (c + 1 >= cands.length) return;
      const cost = (omega[i]![c + 1]! - omega[i]![c]!) / ((cands[c]! - cands[c + 1]!) * l.weight.size);
      if (cost < bestCost) [best, bestCost] = [i, cost];
    });
    used -= (cands[choice[best]!]! - cands[choice[best]! + 1]!) * layers[best]!.weight.size;
    choice[best]!++;
  }
  // Spend what the last step left: raise the layers whose wider width removes the most sensitivity per bit.
  for (;;) {
    let best = -1, bestGain = 0;
    layers.forEach((l, i) => {
      const c = choice[i]!;
      if (c === 0 || used + (cands[c - 1]! - cands[c]!) * l.weight.size > limit) return;
      const gain = (omega[i]![c]! - omega[i]![c - 1]!) / ((cands[c - 1]! - cands[c]!) * l.weight.size);
      if (gain > bestGain) [best, bestGain] = [i, gain];
    });
    if (best < 0) break;
    used += (cands[choice[best]! - 1]! - cands[choice[best]!]!) * layers[best]!.weight.size;
    choice[best]!--;
  }
  return choice.map((c) => cands[c]!);
}

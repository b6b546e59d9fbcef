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
import { add, logSoftmax, mul, mulScalar, softmax, sum } from '../../ops/index.js';
import { noGrad } from '../../autograd/mode.js';
import type { Module } from '../../nn/module.js';
import { Rng } from '../../util/rng.js';
import { observeRange, quantizeWeights } from './observers.js';
import { ptq, quantizableLayers, simulate } from './ptq.js';

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

/** Candidate widths (widest first), each layer's Ω_l(b) per candidate, and the budget in bits. */
interface Table {
  layers: ReturnType<typeof quantizableLayers>;
  cands: number[];
  omega: number[][];
  limit: number;
}

function sensitivityTable(model: Module, sens: LayerSensitivity[], budget: BitBudget): Table {
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
  return { layers, cands, omega, limit };
}

const usedBits = (t: Table, choice: number[]) => t.layers.reduce((s, l, i) => s + t.cands[choice[i]!]! * l.weight.size, 0);

/** Raises layers (choice: candidate indices) while the budget allows, the largest sensitivity removed per bit first. */
function fillBudget(t: Table, choice: number[]): number[] {
  let used = usedBits(t, choice);
  for (;;) {
    let best = -1, bestGain = 0;
    t.layers.forEach((l, i) => {
      const c = choice[i]!;
      if (c === 0 || used + (t.cands[c - 1]! - t.cands[c]!) * l.weight.size > t.limit) return;
      const gain = (t.omega[i]![c]! - t.omega[i]![c - 1]!) / ((t.cands[c - 1]! - t.cands[c]!) * l.weight.size);
      if (gain > bestGain) [best, bestGain] = [i, gain];
    });
    if (best < 0) return choice;
    used += (t.cands[choice[best]! - 1]! - t.cands[choice[best]!]!) * t.layers[best]!.weight.size;
    choice[best]!--;
  }
}

/**
 * Bits per layer minimizing Σ Tr(H_l)/n_l·‖Q_b(W_l) − W_l‖² with Σ n_l·b_l within the budget:
 * greedy from the widest candidate, each step lowering the layer whose next-lower width adds the
 * least sensitivity per bit saved, then raising layers again while the budget allows.
 */
export function allocateBits(model: Module, sens: LayerSensitivity[], budget: BitBudget): number[] {
  const t = sensitivityTable(model, sens, budget);
  const choice = t.layers.map(() => 0);
  let used = usedBits(t, choice);
  while (used > t.limit) {
    let best = -1, bestCost = Infinity;
    t.layers.forEach((l, i) => {
      const c = choice[i]!;
      if (c + 1 >= t.cands.length) return;
      const cost = (t.omega[i]![c + 1]! - t.omega[i]![c]!) / ((t.cands[c]! - t.cands[c + 1]!) * l.weight.size);
      if (cost < bestCost) [best, bestCost] = [i, cost];
    });
    used -= (t.cands[choice[best]!]! - t.cands[choice[best]! + 1]!) * t.layers[best]!.weight.size;
    choice[best]!++;
  }
  return fillBudget(t, choice).map((c) => t.cands[c]!);
}

/**
 * Allocations within the budget to choose from (distinct): the greedy one (`allocateBits`), the
 * per-layer optima of the Lagrangian Ω_l(b) + λ·n_l·b over a grid of λ (each raised while the
 * budget allows; the points of the sensitivity/size trade-off the greedy walk can step over), and
 * every width applied uniformly that fits; at most `max` (the greedy and uniform ones first, then
 * the least predicted ΣΩ).
 *
 * @example
 * const options = candidateAllocations(model, sens, { avgBits: 4 });   // [[8, 3, 3, 8, 8], [4, 4, 4, 4, 4], ...]
 */
export function candidateAllocations(model: Module, sens: LayerSensitivity[], budget: BitBudget, max = 6): number[][] {
  const t = sensitivityTable(model, sens, budget);
  const out = new Map<string, number[]>();
  const add = (bits: number[]) => out.set(bits.join('/'), bits);
  add(allocateBits(model, sens, budget));
  for (const c of t.cands) if (usedBits(t, t.layers.map(() => t.cands.indexOf(c))) <= t.limit) add(t.layers.map(() => c));
  const slopes = t.layers.flatMap((l, i) => t.cands.slice(1).map((_, c) => (t.omega[i]![c + 1]! - t.omega[i]![c]!) / ((t.cands[c]! - t.cands[c + 1]!) * l.weight.size))).filter((v) => v > 0);
  for (const lambda of [...new Set(slopes)].sort((a, b) => a - b)) {
    const choice = t.layers.map((l, i) => {
      let best = 0;
      t.cands.forEach((b, c) => {
        if (t.omega[i]![c]! + lambda * l.weight.size * b < t.omega[i]![best]! + lambda * l.weight.size * t.cands[best]!) best = c;
      });
      return best;
    });
    if (usedBits(t, choice) <= t.limit) add(fillBudget(t, choice).map((c) => t.cands[c]!));
  }
  // The greedy and uniform allocations, then the Lagrangian ones of least predicted ΣΩ, `max` in all.
  const predicted = (bits: number[]) => bits.reduce((s, b, i) => s + t.omega[i]![t.cands.indexOf(b)]!, 0);
  const [first, ...rest] = [...out.values()];
  const uniform = rest.filter((b) => b.every((v) => v === b[0]));
  const others = rest.filter((b) => !uniform.includes(b)).sort((a, b) => predicted(a) - predicted(b));
  return [first!, ...uniform, ...others].slice(0, Math.max(max, 1 + uniform.length));
}

export interface BitChoice {
  bits: number[];
  /** Every candidate with its calibration score (mean KL divergence from the float model's outputs; lower is better). */
  scores: { bits: number[]; kl: number }[];
}

/**
 * The candidate allocation whose round-to-nearest quantized model (`ptq` with `aBits` inputs)
 * stays closest to the float model on the calibration items: mean KL(softmax(float) ‖
 * softmax(quantized)). The Hessian traces rank allocations by a second-order estimate; this checks
 * the few best ones on data, where the estimate can misjudge a large layer's narrowest widths.
 *
 * @example
 * const { bits } = selectBits(model, calib, [128, 1, 28, 28], candidateAllocations(model, sens, { avgBits: 4 }), 8);
 */
export function selectBits(model: Module, calib: Float32Array, shape: number[], candidates: number[][], aBits: number): BitChoice {
  if (candidates.length === 0) throw new RangeError('selectBits: no candidate allocations');
  const wasTraining = model.training;
  model.eval();
  const probs = (): Float32Array => noGrad(() => scope(() => Float32Array.from(softmax(model.call(fromValues(calib, shape)), 1).values())));
  try {
    const p = probs(), classes = p.length / shape[0]!;
    const scores = candidates.map((bits) => {
      const restore = simulate(model, ptq(model, calib, shape, { method: 'rtn', wBits: bits, aBits }));
      let q: Float32Array;
      try {
        q = probs();
      } finally {
        restore();
      }
      let kl = 0;
      for (let i = 0; i < p.length; i++) if (p[i]! > 0) kl += p[i]! * (Math.log(p[i]!) - Math.log(Math.max(q[i]!, 1e-12)));
      return { bits, kl: kl / (p.length / classes) };
    });
    const best = scores.reduce((a, b) => (b.kl < a.kl ? b : a));
    return { bits: best.bits, scores };
  } finally {
    model.train(wasTraining);
  }
}

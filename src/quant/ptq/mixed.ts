/**
 * Hessian-guided mixed precision (HAWQ-V2): per-layer sensitivity Ω_l(b) = Tr(H_l)/n_l ·
 * ‖Q_b(W_l) − W_l‖², with Tr(H_l) estimated by Hutchinson (mean of vᵀHv over Rademacher v) on
 * the cross-entropy against the float model's own predictions (calibration data needs no labels).
 * Hessian-vector products come from double backward, `grad(..., { createGraph: true })`, when
 * every op of the model has a second-order backward; otherwise (slimgrad's conv2d, pools and
 * batch norm are first-order only) from central differences of first-order gradients,
 * Hv ≈ (∇L(w + εv) − ∇L(w − εv))/2ε. Bits per layer then minimize ΣΩ_l under a weight-size budget
 * (`allocateBits`, greedy); `candidateAllocations` lists that allocation with its neighbours and the
 * uniform ones, and `selectBits` picks among them on held-out data (task loss where labels are
 * given, else KL from the float model).
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
import { ptq, quantizableLayers, type PtqOptions, type PtqResult } from './ptq.js';
import { disagreements, logitsOf, mean, outputGap, pairedUpper, quantizedLogits, taskScore } from './error.js';

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
function fillBudget(t: Table, choice: number[], pinned = -1): number[] {
  let used = usedBits(t, choice);
  for (;;) {
    let best = -1, bestGain = 0;
    t.layers.forEach((l, i) => {
      const c = choice[i]!;
      if (c === 0 || i === pinned || used + (t.cands[c - 1]! - t.cands[c]!) * l.weight.size > t.limit) return;
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
  return greedy(t)!.map((c) => t.cands[c]!);
}

/** The greedy walk (candidate indices), with layer `pin[0]` held at candidate `pin[1]`; null when the budget cannot be met so. */
function greedy(t: Table, pin?: [number, number]): number[] | null {
  const choice = t.layers.map((_, i) => (pin && pin[0] === i ? pin[1] : 0));
  let used = usedBits(t, choice);
  while (used > t.limit) {
    let best = -1, bestCost = Infinity;
    t.layers.forEach((l, i) => {
      const c = choice[i]!;
      if (c + 1 >= t.cands.length || (pin && pin[0] === i)) return;
      const cost = (t.omega[i]![c + 1]! - t.omega[i]![c]!) / ((t.cands[c]! - t.cands[c + 1]!) * l.weight.size);
      if (cost < bestCost) [best, bestCost] = [i, cost];
    });
    if (best < 0) return null;
    used -= (t.cands[choice[best]!]! - t.cands[choice[best]! + 1]!) * t.layers[best]!.weight.size;
    choice[best]!++;
  }
  return fillBudget(t, choice, pin?.[0]);
}

/**
 * Allocations within the budget to choose from (distinct), at most `max`: the greedy one
 * (`allocateBits`), every width applied uniformly that fits, then for each layer the greedy walk
 * with that layer held one width above its greedy width (what a layer the traces misjudge would
 * call for), then the greedy walk with any layer held at any width, least predicted ΣΩ first.
 *
 * @example
 * const options = candidateAllocations(model, sens, { avgBits: 4 });   // [[8, 8, 3, 6, 8], [4, 4, 4, 4, 4], [8, 6, 4, 3, 8], ...]
 */
export function candidateAllocations(model: Module, sens: LayerSensitivity[], budget: BitBudget, max = 8): number[][] {
  const t = sensitivityTable(model, sens, budget);
  const bits = (choice: number[] | null) => choice && choice.map((c) => t.cands[c]!);
  const base = greedy(t)!, key = (b: number[]) => b.join('/');
  const predicted = (b: number[]) => b.reduce((s, v, i) => s + t.omega[i]![t.cands.indexOf(v)]!, 0);
  const byPrediction = (list: (number[] | null)[]) => list.filter((b): b is number[] => b !== null).sort((x, y) => predicted(x) - predicted(y));
  const uniform = t.cands.map((_, c) => t.layers.map(() => c)).filter((ch) => usedBits(t, ch) <= t.limit).map((ch) => bits(ch)!);
  const raised = byPrediction(t.layers.map((_, i) => (base[i]! > 0 ? bits(greedy(t, [i, base[i]! - 1])) : null)));
  const pinned = byPrediction(t.layers.flatMap((_, i) => t.cands.map((_, c) => bits(greedy(t, [i, c])))));
  const out = new Map<string, number[]>();
  for (const b of [bits(base)!, ...uniform, ...raised, ...pinned]) if (!out.has(key(b))) out.set(key(b), b);
  return [...out.values()].slice(0, Math.max(max, 1 + uniform.length));
}

/** Items a selection scores candidates on, with their true classes when known. */
export interface ScoringItems {
  data: Float32Array;
  shape: number[];
  /** Integer class per item: candidates are then scored on the task loss (cross-entropy) and correctness instead of on closeness to the float model. */
  labels?: ArrayLike<number>;
}

export interface BitChoice {
  bits: number[];
  /**
   * What the selection minimized per item: `kl`, KL(softmax(float) ‖ softmax(quantized)), on
   * unlabeled items; `cross-entropy`, the quantized model's loss on the true class, on labeled items.
   */
  criterion: 'kl' | 'cross-entropy';
  /**
   * Every distinct candidate with its mean `criterion` on the ranking items (lower is better)
   * under round-to-nearest, and `lossMethod` under the final method where it was run.
   */
  scores: { bits: number[]; loss: number; lossMethod?: number }[];
  /** The best uniform candidate on the ranking items (null when there is none): the choice unless the best mixed one passes the confirmation. */
  uniform: number[] | null;
  /**
   * The paired comparison of the best mixed candidate (`bits`) with `uniform` on the confirmation
   * items (null when there was nothing to compare): the upper bound mean(loss_mixed − loss_uniform) +
   * margin·SE, and McNemar's discordant counts of hits (top-1 agreement with the float model under
   * `kl`, the true class under `cross-entropy`).
   */
  confirmation: { bits: number[]; upper: number; onlyMixed: number; onlyUniform: number; items: number; passed: boolean } | null;
}

export interface SelectOptions extends Pick<PtqOptions, 'method' | 'iters' | 'seed'> {
  /** With a method other than rtn: how many of the best candidates under RTN are scored again with it (default 2; uniform candidates always are). */
  finalists?: number;
  /** Items to rank candidates on, other than the calibration items that AdaRound fits (default: the calibration items, unlabeled). */
  heldOut?: ScoringItems;
  /**
   * Other items on which the best mixed candidate is compared with the best uniform one
   * (default: the second half of `heldOut`, which then ranks on its first half). Labels must be
   * given on both or on neither.
   */
  confirm?: ScoringItems;
  /**
   * How many standard errors of the per-item loss difference the mixed candidate must beat the best
   * uniform one by on the confirmation items (default 2).
   */
  margin?: number;
}

/**
 * The candidate allocation whose quantized model (calibrated on `calib`) has the lowest loss on
 * held-out items: with labels (`heldOut.labels`), the task loss (cross-entropy on the true class),
 * since what a smaller model must keep is its accuracy, which fidelity to the float model only
 * approximates (a quantized model can be more or less accurate than the float one at the same
 * distance from it); without, KL(softmax(float) ‖ softmax(quantized)). Candidates are ranked per
 * item on the ranking items (`options.heldOut`; AdaRound fits the calibration items, so other items
 * are better), first with round-to-nearest weights for every candidate, then (options.method
 * adaround or aquant) with that method for the best `finalists` and the uniform candidates. The
 * Hessian traces rank allocations by a second-order estimate; this checks them on data, where the
 * estimate can misjudge what a large layer's narrowest width costs, and where AdaRound recovers
 * more at some widths than at others.
 *
 * The choice stays the best uniform candidate unless the best mixed one (on the ranking items)
 * passes one paired comparison with it on separate confirmation items: its mean per-item loss lower
 * by more than `margin` standard errors, and no fewer confirmation items hit (correct with labels,
 * else agreeing with the float model's top-1 class; McNemar's discordant pairs: only-mixed ≥
 * only-uniform). Ranking and testing on the same items would favour whichever candidate the
 * ranking items happen to flatter (the winner of several noisy scores looks better than it is); on
 * fresh items the one test is unbiased. The loss measures the whole output distribution, the hits
 * only the top-1 class, hence both conditions.
 *
 * @example
 * const { bits } = selectBits(model, calib, [128, 1, 28, 28], candidateAllocations(model, sens, { avgBits: 4 }), 8, { heldOut: { data, shape, labels } });
 */
export function selectBits(model: Module, calib: Float32Array, shape: number[], candidates: number[][], aBits: number, options: SelectOptions = {}): BitChoice {
  if (candidates.length === 0) throw new RangeError('selectBits: no candidate allocations');
  const scored: ScoringItems = options.heldOut ?? { data: calib, shape };
  let rank = scored, confirm = options.confirm;
  if (!confirm) {
    const n = scored.shape[0]!, half = Math.floor(n / 2), per = scored.data.length / n;
    if (half < 1) throw new RangeError(`selectBits: ${n} scored item(s) cannot be split into ranking and confirmation items`);
    const part = (from: number, to: number): ScoringItems => ({
      data: scored.data.subarray(from * per, to * per), shape: [to - from, ...scored.shape.slice(1)], ...(scored.labels ? { labels: Array.from(scored.labels).slice(from, to) } : {}),
    });
    rank = part(0, half);
    confirm = part(half, n);
  }
  if (!rank.labels !== !confirm.labels) throw new RangeError('selectBits: give labels for both the ranking (heldOut) and the confirmation items, or for neither');
  for (const it of [rank, confirm]) if (it.labels && it.labels.length !== it.shape[0]) throw new RangeError(`selectBits: ${it.labels.length} labels for ${it.shape[0]} items`);
  const criterion: BitChoice['criterion'] = rank.labels ? 'cross-entropy' : 'kl';
  /** Per-item loss and hit of a quantized model on `items` (`ref`: the float model's logits there, for KL). */
  const scorer = (items: ScoringItems) => {
    const ref = items.labels ? null : logitsOf(model, items.data, items.shape);
    return (r: PtqResult): { loss: Float64Array; hit: Float64Array } => {
      if (!ref) {
        const t = taskScore(quantizedLogits(model, r, items.data, items.shape), items.labels!);
        return { loss: t.ce, hit: t.correct };
      }
      const g = outputGap(model, r, items.data, items.shape, ref);
      return { loss: g.kl, hit: g.agree };
    };
  };
  const scoreRank = scorer(rank), scoreConfirm = scorer(confirm);
  const results = new Map<number[], PtqResult>();
  /** Mean loss on the ranking items; the PTQ result is kept for the confirmation. */
  const lossOf = (bits: number[], o: PtqOptions): number => {
    const r = ptq(model, calib, shape, { ...o, wBits: bits, aBits });
    results.set(bits, r);
    return mean(scoreRank(r).loss);
  };
  const distinct = [...new Map(candidates.map((b) => [b.join('/'), b])).values()];
  const scores: BitChoice['scores'] = distinct.map((bits) => ({ bits, loss: lossOf(bits, { method: 'rtn' }) }));
  const isUniform = (b: number[]) => b.every((v) => v === b[0]);
  const method = options.method ?? 'rtn';
  let final = scores, value = (c: BitChoice['scores'][number]) => c.loss;
  if (method !== 'rtn') {
    const ranked = [...scores].sort((a, b) => a.loss - b.loss);
    final = [...new Set([...ranked.slice(0, options.finalists ?? 2), ...scores.filter((c) => isUniform(c.bits))])];
    for (const c of final) c.lossMethod = lossOf(c.bits, { method, iters: options.iters, seed: options.seed });
    value = (c) => c.lossMethod!;
  }
  const least = (list: typeof scores) => list.reduce((a, b) => (value(b) < value(a) ? b : a));
  const uniforms = final.filter((c) => isUniform(c.bits)), mixed = final.filter((c) => !isUniform(c.bits));
  if (uniforms.length === 0) return { bits: least(final).bits, criterion, scores, uniform: null, confirmation: null };
  const u = least(uniforms).bits;
  if (mixed.length === 0) return { bits: u, criterion, scores, uniform: u, confirmation: null };
  const m = least(mixed).bits;
  const gm = scoreConfirm(results.get(m)!), gu = scoreConfirm(results.get(u)!);
  const upper = pairedUpper(gm.loss, gu.loss, options.margin ?? 2), { onlyA: onlyMixed, onlyB: onlyUniform } = disagreements(gm.hit, gu.hit);
  const passed = upper < 0 && onlyMixed >= onlyUniform;
  return { bits: passed ? m : u, criterion, scores, uniform: u, confirmation: { bits: m, upper, onlyMixed, onlyUniform, items: confirm.shape[0]!, passed } };
}

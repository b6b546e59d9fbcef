/**
 * GACT-style automatic precision (act.md §4.2-4.3 and lesson 5 of §14). Each stored tensor t the
 * mode controls gets bits b_t ∈ {1, 2, 4, 8} minimising the predicted extra gradient variance
 * Σ_t V_t(b_t) subject to Σ_t b_t·n_t ≤ B·Σ_t n_t (B: the average bits of `auto:B`).
 *
 * The unit of allocation is a stored tensor, not a save: a tensor saved by several ops (a
 * layer-norm output read by the query, key and value projections) is one packed copy, so its
 * consumers share one width, its elements count once against the budget and its sensitivity is
 * the sum of theirs.
 *
 * Model: V_t(b) = κ_t·E_t(b). E_t(b) is the expected squared quantization error of t at b bits,
 * computed from its values with the codec's own groups (step²·f(1 − f) per element: values bunched
 * near a code, as post-ReLU zeros and softmax probabilities are, cost far less than the step²/4
 * bound, and 1 bit is not 9x worse than 2 there). κ_t, how much of that error reaches the
 * parameter gradients, is measured (`calibrate`): on a calibration step the saves are kept exact
 * and backward runs once more per tensor with only that tensor quantized at 2 bits; κ_t =
 * ‖g_t − g‖²/E_t(2). The ActNN/GACT analytic proxy κ_t ≈ ‖∂L/∂y_t‖²/N (used between calibrations
 * as a rescaling, κ_t·‖∂L/∂y_t‖²/‖∂L/∂y_t‖²_cal, and alone when no calibration can run) misses
 * the kernel area of convolutions and every path by which a saved value reaches the weights
 * through input gradients (softmax, layer norm, GELU, batch norm): on the char LM it ranked the
 * tensors so badly that auto:2 lost 1.1 nats where uniform 2 bits lost 0.47 (BENCHMARKS.md).
 *
 * @example
 * const act = new Compression({ mode: 'auto', autoBits: 2, model }); // or parseActSpec('auto:2')
 * // ... train with act.run(...) ...
 * act.allocation(); // { meanBits, saves: [{ module, op, name, consumers, numel, bits, sensitivity, ... }] }
 */
import type { CodeBits } from './quantize.js';

export interface AllocationItem {
  /** C_t: the predicted gradient variance at 1 bit; with no `costs`, V_t(b) = C_t/(2^b − 1)². */
  readonly sensitivity: number;
  /** Elements of the tensor. */
  readonly numel: number;
  /** Predicted gradient variance at 1, 2, 4 and 8 bits (overrides the 1/(2^b − 1)² law). */
  readonly costs?: readonly number[];
}

export const LADDER: readonly CodeBits[] = [8, 4, 2, 1];
const BITS_UP: readonly CodeBits[] = [1, 2, 4, 8];
/**
 * Default schedule: a sensitivity estimate every 100 steps, every 3rd of them (step 0, 300, 600,
 * ...) a calibration. Calibrating only once goes stale: on the char LM, auto:2 calibrated at step 0
 * alone ended 1.29 nats above fp32 after 900 steps, every 300 steps 0.26 (uniform int2: 0.47).
 */
export const DEFAULT_AUTO_INTERVAL = 100;
export const DEFAULT_AUTO_CALIBRATE = 3;
/** The bits at which calibration probes each tensor. */
export const PROBE_BITS: CodeBits = 2;
const noise = (b: number) => 1 / ((2 ** b - 1) ** 2);
const clampCost = (v: number) => (Number.isFinite(v) && v >= 0 ? Math.min(v, 1e10) : 1e10);

/**
 * Minimises Σ_t V_t(b_t) under Σ_t b_t·n_t ≤ avgBits·Σ_t n_t. Three candidates, the best feasible
 * one wins: GACT's greedy (start at 8 bits, repeatedly take the step with the smallest variance
 * increase per bit saved until the budget holds, then give back bits where they reduce the
 * variance most per bit); the Lagrangian solutions (each tensor alone minimises V_t(b) + λ·b·n_t,
 * λ bisected to the budget, then topped up greedily); and uniform bits (never worse than the
 * uniform mode of the same budget). A non-finite or negative cost counts as 1e10 (GACT's clamp).
 *
 * @example
 * allocateBits([{ sensitivity: 100, numel: 10 }, { sensitivity: 1, numel: 10 }], 4.5); // [4, 4]
 */
export function allocateBits(items: readonly AllocationItem[], avgBits: number): CodeBits[] {
  if (!(avgBits >= 1 && avgBits <= 8)) throw new RangeError(`allocateBits: average bits must be in [1, 8], got ${avgBits}`);
  const raw = items.map((it) => BITS_UP.map((b, k) => clampCost(it.costs ? it.costs[k]! : it.sensitivity * noise(b))));
  // Relative to the largest, so tiny variances do not underflow the step costs.
  const top = Math.max(0, ...raw.flat());
  const cost = raw.map((r) => r.map((v) => (top > 0 ? v / top : 0)));
  const at = (i: number, b: CodeBits) => cost[i]![BITS_UP.indexOf(b)]!;
  const total = items.reduce((s, it) => s + it.numel, 0);
  const budget = avgBits * total + 1e-9 * Math.max(1, total);
  const used = (bs: readonly CodeBits[]) => bs.reduce((s, b, i) => s + b * items[i]!.numel, 0);
  const variance = (bs: readonly CodeBits[]) => bs.reduce((s, b, i) => s + at(i, b), 0);
  const candidates = [greedy(items, cost, at, budget), ...lagrangian(items, at, budget, used), items.map(() => LADDER.find((b) => b <= avgBits)!)];
  let best: CodeBits[] | null = null;
  for (const c of candidates) if (used(c) <= budget && (best === null || variance(c) < variance(best))) best = c;
  return best!;
}

type Cost = (i: number, b: CodeBits) => number;

/** GACT's marginal greedy from 8 bits down, then bits given back while the budget allows. */
function greedy(items: readonly AllocationItem[], cost: number[][], at: Cost, budget: number): CodeBits[] {
  const bits: CodeBits[] = items.map(() => 8);
  let used = 8 * items.reduce((s, it) => s + it.numel, 0);
  const next = (b: CodeBits) => LADDER[LADDER.indexOf(b) + 1];
  const stepCost = (i: number, from: CodeBits, to: CodeBits) => (at(i, to) - at(i, from)) / (items[i]!.numel * (from - to));
  while (used > budget) {
    let best = -1, bestCost = Infinity;
    for (let i = 0; i < items.length; i++) {
      const nb = next(bits[i]!);
      if (nb === undefined || items[i]!.numel === 0) continue;
      const c = stepCost(i, bits[i]!, nb);
      // Ties (e.g. zero costs) go to the least sensitive per element.
      if (c < bestCost || (c === bestCost && best >= 0 && cost[i]![0]! / items[i]!.numel < cost[best]![0]! / items[best]!.numel)) {
        bestCost = c;
        best = i;
      }
    }
    if (best < 0) break; // everything at 1 bit
    const nb = next(bits[best]!)!;
    used -= (bits[best]! - nb) * items[best]!.numel;
    bits[best] = nb;
  }
  return topUp(items, at, bits, used, budget);
}

/** Raises bits one ladder step at a time, largest variance decrease per bit first, while the budget allows. */
function topUp(items: readonly AllocationItem[], at: Cost, bits: CodeBits[], used: number, budget: number): CodeBits[] {
  for (;;) {
    let best = -1, bestGain = 0;
    for (let i = 0; i < items.length; i++) {
      const up = LADDER[LADDER.indexOf(bits[i]!) - 1];
      if (up === undefined || used + (up - bits[i]!) * items[i]!.numel > budget) continue;
      const gain = (at(i, bits[i]!) - at(i, up)) / ((up - bits[i]!) * items[i]!.numel);
      if (gain > bestGain) {
        bestGain = gain;
        best = i;
      }
    }
    if (best < 0) return bits;
    const up = LADDER[LADDER.indexOf(bits[best]!) - 1]!;
    used += (up - bits[best]!) * items[best]!.numel;
    bits[best] = up;
  }
}

/** The per-tensor minimisers of V_t(b) + λ·b·n_t at the λ that meets the budget, topped up (two candidates). */
function lagrangian(items: readonly AllocationItem[], at: Cost, budget: number, used: (bs: readonly CodeBits[]) => number): CodeBits[][] {
  const pick = (lambda: number) => items.map((it, i) => {
    let best: CodeBits = 8, v = Infinity;
    for (const b of BITS_UP) {
      const f = at(i, b) + lambda * b * it.numel;
      if (f < v) {
        v = f;
        best = b;
      }
    }
    return best;
  });
  let lo = 0, hi = 1;
  while (used(pick(hi)) > budget && hi < 1e30) hi *= 4;
  if (used(pick(hi)) > budget) return [];
  for (let k = 0; k < 100; k++) {
    const mid = (lo + hi) / 2;
    if (used(pick(mid)) > budget) lo = mid;
    else hi = mid;
  }
  const feasible = pick(hi);
  return [topUp(items, at, feasible, used(feasible), budget)];
}

/** The predicted extra gradient variance of an allocation, Σ V_t(b_t). */
export function predictedVariance(items: readonly AllocationItem[], bits: readonly number[]): number {
  return items.reduce((s, it, i) => s + (it.costs ? it.costs[BITS_UP.indexOf(bits[i]! as CodeBits)]! : it.sensitivity * noise(bits[i]!)), 0);
}

/** One controlled stored tensor (one or more saves of the same view), as the session sees it across steps. */
export interface AutoSave {
  /** The first consumer's save key. */
  readonly key: string;
  readonly module: string;
  readonly op: string;
  readonly name: string;
  /** Saves (op:name) that share this tensor. */
  consumers: string[];
  numel: number;
  /** Expected squared quantization error at 1, 2, 4 and 8 bits (estimation steps). */
  noise: number[];
  /** Rows of the batch (N). */
  rows: number;
  /** Σ over consumers of ‖∂L/∂y‖² of the saving node's outputs (estimation steps). */
  gradEnergy: number;
  /** Calibrated κ_t (measured gradient error per unit of quantization error), null before any calibration. */
  kappa: number | null;
  /** gradEnergy on the calibration step (to rescale κ_t between calibrations). */
  kappaGradEnergy: number;
  /** ‖g_t − g‖² measured on the last calibration with only this tensor at PROBE_BITS. */
  probeError: number | null;
  bits: CodeBits;
}

/** κ_t in force: calibrated and rescaled by the output-gradient energy, or the analytic proxy ‖∂L/∂y‖²/N. */
export function kappaOf(s: AutoSave): number {
  if (s.kappa === null) return proxyKappa(s);
  return s.kappaGradEnergy > 0 && s.gradEnergy > 0 ? (s.kappa * s.gradEnergy) / s.kappaGradEnergy : s.kappa;
}

/** The analytic proxy κ_t = ‖∂L/∂y_t‖²/N (ActNN/GACT's zero-pass estimate). */
export function proxyKappa(s: AutoSave): number {
  return s.gradEnergy / Math.max(1, s.rows);
}

/** Predicted gradient variance of a tensor at 1, 2, 4, 8 bits. */
export function costsOf(s: AutoSave): number[] {
  const k = kappaOf(s);
  return s.noise.map((e) => k * e);
}

/** The allocation state of an `auto:B` session. */
export class AutoPrecision {
  readonly saves = new Map<string, AutoSave>();
  private allocated = false;
  /**
   * `calibrateEvery`: every how many estimations one is a calibration (the first always is);
   * 0 never calibrates (the analytic proxy alone).
   */
  constructor(readonly avgBits: number, readonly interval = DEFAULT_AUTO_INTERVAL, readonly calibrateEvery = DEFAULT_AUTO_CALIBRATE) {
    if (!(avgBits >= 1 && avgBits <= 8)) throw new RangeError(`withCompression: auto bits must be in [1, 8], got ${avgBits}`);
    if (!Number.isInteger(interval) || interval < 1) throw new RangeError(`withCompression: autoInterval must be a positive integer, got ${interval}`);
    if (!Number.isInteger(calibrateEvery) || calibrateEvery < 0) throw new RangeError(`withCompression: autoCalibrate must be a non-negative integer, got ${calibrateEvery}`);
  }

  /** Bits before the first allocation: the largest ladder value at or below the average. */
  get initialBits(): CodeBits {
    return LADDER.find((b) => b <= this.avgBits)!;
  }

  /** True when `step` measures sensitivities (step 0, then every `interval` steps). */
  estimating(step: number): boolean {
    return step % this.interval === 0;
  }

  /** True when `step` is an estimation step that also calibrates κ (the first, then every `calibrateEvery`-th). */
  calibrating(step: number): boolean {
    return this.calibrateEvery > 0 && this.estimating(step) && (step / this.interval) % this.calibrateEvery === 0;
  }

  bitsFor(key: string): CodeBits {
    return this.saves.get(key)?.bits ?? this.initialBits;
  }

  /** Registers the first save of a tensor this step (creating its record), returning it. */
  record(key: string, module: string, op: string, name: string, numel: number, rows: number): AutoSave {
    let s = this.saves.get(key);
    if (!s) {
      s = { key, module, op, name, consumers: [], numel, noise: [0, 0, 0, 0], rows, gradEnergy: 0, kappa: null, kappaGradEnergy: 0, probeError: null, bits: this.initialBits };
      this.saves.set(key, s);
    }
    s.consumers = [`${op}:${name}`];
    s.numel = numel;
    s.rows = rows;
    return s;
  }

  /** Re-allocates from the measured sensitivities (after an estimation step's backward). */
  reallocate(): void {
    const list = [...this.saves.values()];
    const bits = allocateBits(list.map((s) => ({ sensitivity: costsOf(s)[0]!, numel: s.numel, costs: costsOf(s) })), this.avgBits);
    list.forEach((s, i) => (s.bits = bits[i]!));
    this.allocated = true;
  }

  /** Whether an allocation from measurements has been made. */
  get ready(): boolean {
    return this.allocated;
  }

  /** Element-weighted mean bits of the controlled tensors (each stored tensor once). */
  meanBits(): number {
    let n = 0, b = 0;
    for (const s of this.saves.values()) {
      n += s.numel;
      b += s.numel * s.bits;
    }
    return n === 0 ? 0 : b / n;
  }

  /**
   * The allocation, one row per controlled tensor, in save order: `sensitivity` is the predicted
   * gradient variance at 1 bit, `proxy` the analytic proxy's at 1 bit, `probeError` the measured
   * ‖g_t − g‖² at PROBE_BITS on the last calibration (null before one).
   */
  report(): { module: string; op: string; name: string; consumers: string[]; numel: number; bits: number; sensitivity: number; proxy: number; probeError: number | null }[] {
    return [...this.saves.values()].map((s) => ({
      module: s.module, op: s.op, name: s.name, consumers: [...s.consumers], numel: s.numel, bits: s.bits,
      sensitivity: costsOf(s)[0]!, proxy: proxyKappa(s) * s.noise[0]!, probeError: s.probeError,
    }));
  }
}

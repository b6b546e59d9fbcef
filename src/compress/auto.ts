/**
 * GACT-style automatic precision (act.md §4.2-4.3, with lesson 5 of §14: a cheap sensitivity, not
 * 3 extra passes per tensor). Each saved tensor t the mode controls gets bits b_t ∈ {1, 2, 4, 8}
 * minimising the predicted extra gradient variance Σ_t C_t / (2^b_t − 1)² subject to
 * Σ_t b_t·n_t ≤ B·Σ_t n_t (B: the average bits of `auto:B`).
 *
 * Sensitivity (the ActNN proxy, zero extra passes): stochastic rounding at b bits adds noise of
 * variance ≤ step²/4, step = range/(2^b − 1), to every element of a group, so the noise energy of
 * t is E_t/(2^b − 1)² with E_t = Σ_groups n_g·range_g²/4. A weight gradient that reads t sums
 * noise × output gradient over the batch: its error energy ≈ E_t·‖∂L/∂y‖²/N (N: the batch rows).
 * So C_t = E_t·‖∂L/∂y‖²/N, measured on the estimation steps (ranges at pack time, the output
 * gradients when the saving node runs its backward) and re-estimated every `interval` steps; the
 * allocation is recomputed once the estimation step's backward has run.
 *
 * @example
 * const act = new Compression({ mode: 'auto', autoBits: 2, model }); // or parseActSpec('auto:2')
 * // ... train with act.run(...) ...
 * act.allocation(); // { meanBits, saves: [{ module, op, name, numel, bits, sensitivity }] }
 */
import type { CodeBits } from './quantize.js';

export interface AllocationItem {
  /** C_t: the gradient variance the tensor adds at 1 bit times (2^1 − 1)². */
  readonly sensitivity: number;
  /** Elements of the tensor. */
  readonly numel: number;
}

const LADDER: readonly CodeBits[] = [8, 4, 2, 1];
const noise = (b: number) => 1 / ((2 ** b - 1) ** 2);

/**
 * Greedy marginal-gain allocation (GACT's calc_precision over the ladder 8 → 4 → 2 → 1): start
 * every tensor at 8 bits and repeatedly take the step with the smallest variance increase per bit
 * saved until Σ b·n ≤ avgBits·Σ n; then give back the bits the last steps overshot (largest
 * variance decrease per bit first), and never return worse than uniform bits under the budget.
 * A non-finite or negative sensitivity counts as 1e10 (GACT's clamp).
 *
 * @example
 * allocateBits([{ sensitivity: 100, numel: 10 }, { sensitivity: 1, numel: 10 }], 4.5); // [4, 4]
 */
export function allocateBits(items: readonly AllocationItem[], avgBits: number): CodeBits[] {
  if (!(avgBits >= 1 && avgBits <= 8)) throw new RangeError(`allocateBits: average bits must be in [1, 8], got ${avgBits}`);
  const bits: CodeBits[] = items.map(() => 8);
  const raw = items.map((it) => (Number.isFinite(it.sensitivity) && it.sensitivity >= 0 ? Math.min(it.sensitivity, 1e10) : 1e10));
  // Relative to the largest, so tiny sensitivities do not underflow the step costs.
  const top = Math.max(0, ...raw);
  const c = raw.map((v) => (top > 0 ? v / top : 0));
  const total = items.reduce((s, it) => s + it.numel, 0);
  let used = 8 * total;
  const budget = avgBits * total;
  const next = (b: CodeBits) => LADDER[LADDER.indexOf(b) + 1];
  const stepCost = (i: number, from: CodeBits, to: CodeBits) => (c[i]! * (noise(to) - noise(from))) / (items[i]!.numel * (from - to));
  while (used > budget + 1e-9) {
    let best = -1, bestCost = Infinity;
    for (let i = 0; i < items.length; i++) {
      const nb = next(bits[i]!);
      if (nb === undefined || items[i]!.numel === 0) continue;
      const cost = stepCost(i, bits[i]!, nb);
      // Ties (e.g. zero sensitivities) go to the least sensitive per element.
      if (cost < bestCost || (cost === bestCost && best >= 0 && c[i]! / items[i]!.numel < c[best]! / items[best]!.numel)) {
        bestCost = cost;
        best = i;
      }
    }
    if (best < 0) break; // everything at 1 bit
    const nb = next(bits[best]!)!;
    used -= (bits[best]! - nb) * items[best]!.numel;
    bits[best] = nb;
  }
  // The last step may overshoot the budget: give bits back where they reduce the variance most per bit.
  for (;;) {
    let best = -1, bestGain = 0;
    for (let i = 0; i < items.length; i++) {
      const up = LADDER[LADDER.indexOf(bits[i]!) - 1];
      if (up === undefined || used + (up - bits[i]!) * items[i]!.numel > budget + 1e-9) continue;
      const gain = stepCost(i, up, bits[i]!);
      if (gain > bestGain) {
        bestGain = gain;
        best = i;
      }
    }
    if (best < 0) break;
    const up = LADDER[LADDER.indexOf(bits[best]!) - 1]!;
    used += (up - bits[best]!) * items[best]!.numel;
    bits[best] = up;
  }
  // Greedy steps of unequal size are not optimal: never do worse than uniform bits under the budget.
  const uniform = LADDER.find((b) => b <= avgBits)!;
  const variance = (bs: readonly number[]) => bs.reduce((s, b, i) => s + c[i]! * noise(b), 0);
  if (variance(items.map(() => uniform)) < variance(bits)) return items.map(() => uniform);
  return bits;
}

/** The predicted extra gradient variance of an allocation, Σ C_t/(2^b_t − 1)². */
export function predictedVariance(items: readonly AllocationItem[], bits: readonly number[]): number {
  return items.reduce((s, it, i) => s + it.sensitivity * noise(bits[i]!), 0);
}

/** One controlled save, as the session sees it across steps. */
export interface AutoSave {
  readonly key: string;
  readonly module: string;
  readonly op: string;
  readonly name: string;
  numel: number;
  /** Noise energy at 1 bit, E_t (estimation steps). */
  energy: number;
  /** Rows of the batch (N). */
  rows: number;
  /** ‖∂L/∂y‖² of the saving node's outputs (estimation steps). */
  gradEnergy: number;
  bits: CodeBits;
}

/** The allocation state of an `auto:B` session. */
export class AutoPrecision {
  readonly saves = new Map<string, AutoSave>();
  private allocated = false;
  constructor(readonly avgBits: number, readonly interval: number) {
    if (!(avgBits >= 1 && avgBits <= 8)) throw new RangeError(`withCompression: auto bits must be in [1, 8], got ${avgBits}`);
    if (!Number.isInteger(interval) || interval < 1) throw new RangeError(`withCompression: autoInterval must be a positive integer, got ${interval}`);
  }

  /** Bits before the first allocation: the largest ladder value at or below the average. */
  get initialBits(): CodeBits {
    return LADDER.find((b) => b <= this.avgBits)!;
  }

  /** True when `step` measures sensitivities (step 0, then every `interval` steps). */
  estimating(step: number): boolean {
    return step % this.interval === 0;
  }

  bitsFor(key: string): CodeBits {
    return this.saves.get(key)?.bits ?? this.initialBits;
  }

  /** Registers a save of this step (creating its record), returning it. */
  record(key: string, module: string, op: string, name: string, numel: number, rows: number): AutoSave {
    let s = this.saves.get(key);
    if (!s) this.saves.set(key, (s = { key, module, op, name, numel, energy: 0, rows, gradEnergy: 0, bits: this.initialBits }));
    s.numel = numel;
    s.rows = rows;
    return s;
  }

  /** Re-allocates from the measured sensitivities (after an estimation step's backward). */
  reallocate(): void {
    const list = [...this.saves.values()];
    const bits = allocateBits(list.map((s) => ({ sensitivity: sensitivity(s), numel: s.numel })), this.avgBits);
    list.forEach((s, i) => (s.bits = bits[i]!));
    this.allocated = true;
  }

  /** Whether an allocation from measurements has been made. */
  get ready(): boolean {
    return this.allocated;
  }

  /** Element-weighted mean bits of the controlled saves. */
  meanBits(): number {
    let n = 0, b = 0;
    for (const s of this.saves.values()) {
      n += s.numel;
      b += s.numel * s.bits;
    }
    return n === 0 ? 0 : b / n;
  }

  /** The allocation, one row per controlled save, in save order. */
  report(): { module: string; op: string; name: string; numel: number; bits: number; sensitivity: number }[] {
    return [...this.saves.values()].map((s) => ({ module: s.module, op: s.op, name: s.name, numel: s.numel, bits: s.bits, sensitivity: sensitivity(s) }));
  }
}

/** C_t = E_t·‖∂L/∂y‖²/N. */
export function sensitivity(s: AutoSave): number {
  return (s.energy * s.gradEnergy) / Math.max(1, s.rows);
}

/**
 * How far a quantized model's outputs are from the float model's, item by item, on unlabeled
 * items: KL(softmax(float) ‖ softmax(quantized)), the squared logit error (summed over classes)
 * and whether the top-1 class agrees; on labeled items also the task's per-item cross-entropy and
 * correctness (`taskScore`). Per-item values allow paired comparisons of two quantized models on
 * the same items (`pairedUpper`, `disagreements`), which decide mixed precision and report
 * AdaRound vs AQuant without test items.
 *
 * @example
 * const ref = logitsOf(model, x, [512, 1, 28, 28]);
 * const result = ptq(model, calib, [128, 1, 28, 28], { wBits: 4 });
 * const gap = outputGap(model, result, x, [512, 1, 28, 28], ref);
 * console.log(mean(gap.kl), mean(gap.sq) / 10, mean(gap.agree));   // KL, logit MSE, top-1 agreement
 * const task = taskScore(quantizedLogits(model, result, x, [512, 1, 28, 28]), labels);
 * console.log(mean(task.ce), mean(task.correct));                  // cross-entropy, accuracy
 */
import { noGrad } from '../../autograd/mode.js';
import { scope } from '../../core/scope.js';
import { fromValues } from '../../core/tensor.js';
import type { Module } from '../../nn/module.js';
import { simulate, type PtqResult } from './ptq.js';

/** The model's outputs (eval mode, no gradient) on items `x` of shape [N, ...], in batches of `batch`. */
export function logitsOf(model: Module, x: Float32Array, shape: number[], batch = 256): Float32Array {
  const n = shape[0]!, per = x.length / n, wasTraining = model.training;
  model.eval();
  const parts: Float32Array[] = [];
  try {
    for (let i = 0; i < n; i += batch) {
      const m = Math.min(batch, n - i);
      parts.push(noGrad(() => scope(() => Float32Array.from(model.call(fromValues(x.subarray(i * per, (i + m) * per), [m, ...shape.slice(1)])).values()))));
    }
  } finally {
    model.train(wasTraining);
  }
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface OutputGap {
  /** KL(softmax(ref) ‖ softmax(q)) per item (nats). */
  kl: Float64Array;
  /** Σ over classes of (q − ref)² per item. */
  sq: Float64Array;
  /** 1 where the top-1 classes agree, else 0. */
  agree: Float64Array;
}

/** log softmax of the row z[at .. at + out.length) into `out`. */
function logSoftmaxRow(z: Float32Array, at: number, out: Float64Array): void {
  const c = out.length;
  let m = -Infinity;
  for (let j = 0; j < c; j++) m = Math.max(m, z[at + j]!);
  let s = 0;
  for (let j = 0; j < c; j++) s += Math.exp(z[at + j]! - m);
  const lse = m + Math.log(s);
  for (let j = 0; j < c; j++) out[j] = z[at + j]! - lse;
}

export interface TaskScore {
  /** Cross-entropy −log softmax(q)[label] per item (nats). */
  ce: Float64Array;
  /** 1 where the top-1 class is the label, else 0. */
  correct: Float64Array;
}

/** Per-item cross-entropy and correctness of logits `q` ([items, classes]) against integer `labels`. */
export function taskScore(q: Float32Array, labels: ArrayLike<number>): TaskScore {
  const items = labels.length;
  if (items === 0 || q.length % items !== 0) throw new Error(`taskScore: ${q.length} logits for ${items} labels`);
  const c = q.length / items, ce = new Float64Array(items), correct = new Float64Array(items), lq = new Float64Array(c);
  for (let i = 0; i < items; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= c) throw new RangeError(`taskScore: label ${y} of item ${i} is outside [0, ${c})`);
    logSoftmaxRow(q, i * c, lq);
    ce[i] = -lq[y]!;
    let top = 0;
    for (let j = 1; j < c; j++) if (q[i * c + j]! > q[i * c + top]!) top = j;
    correct[i] = top === y ? 1 : 0;
  }
  return { ce, correct };
}

/** Per-item gaps between logits `q` and reference logits `ref` ([items, classes] each). */
export function logitGap(ref: Float32Array, q: Float32Array, items: number): OutputGap {
  if (ref.length !== q.length || ref.length % items !== 0) throw new Error(`logitGap: ${ref.length} reference vs ${q.length} logits for ${items} items`);
  const c = ref.length / items, kl = new Float64Array(items), sq = new Float64Array(items), agree = new Float64Array(items);
  const lp = new Float64Array(c), lq = new Float64Array(c);
  for (let i = 0; i < items; i++) {
    const at = i * c;
    logSoftmaxRow(ref, at, lp);
    logSoftmaxRow(q, at, lq);
    let top = 0, topQ = 0;
    for (let j = 0; j < c; j++) {
      kl[i] += Math.exp(lp[j]!) * (lp[j]! - lq[j]!);
      sq[i] += (q[at + j]! - ref[at + j]!) ** 2;
      if (ref[at + j]! > ref[at + top]!) top = j;
      if (q[at + j]! > q[at + topQ]!) topQ = j;
    }
    agree[i] = top === topQ ? 1 : 0;
  }
  return { kl, sq, agree };
}

/** The logits of `result`'s fake-quantized model on items `x`. */
export function quantizedLogits(model: Module, result: PtqResult, x: Float32Array, shape: number[]): Float32Array {
  const restore = simulate(model, result);
  try {
    return logitsOf(model, x, shape);
  } finally {
    restore();
  }
}

/** The gaps of `result`'s fake-quantized model from the float model (`ref`: its logits on `x`, computed when absent). */
export function outputGap(model: Module, result: PtqResult, x: Float32Array, shape: number[], ref = logitsOf(model, x, shape)): OutputGap {
  return logitGap(ref, quantizedLogits(model, result, x, shape), shape[0]!);
}

export const mean = (v: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]!;
  return s / v.length;
};

/** mean(a − b) + z·(standard error of the mean of a − b), over paired items. */
export function pairedUpper(a: ArrayLike<number>, b: ArrayLike<number>, z: number): number {
  if (a.length !== b.length) throw new Error(`pairedUpper: ${a.length} vs ${b.length} items`);
  const d = Float64Array.from(a as ArrayLike<number>, (v, i) => v - b[i]!), m = mean(d);
  let ss = 0;
  for (const v of d) ss += (v - m) ** 2;
  return m + z * Math.sqrt(ss / Math.max(1, d.length - 1) / d.length);
}

/**
 * McNemar's discordant counts of two models' per-item hits (0/1: top-1 agreement with the float
 * model, or correctness) on the same items: `onlyA` items where only A hits, `onlyB` where only B does.
 */
export function disagreements(a: ArrayLike<number>, b: ArrayLike<number>): { onlyA: number; onlyB: number } {
  let onlyA = 0, onlyB = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i]! > b[i]!) onlyA++;
    else if (b[i]! > a[i]!) onlyB++;
  }
  return { onlyA, onlyB };
}

/**
 * Optimizers update parameters in place from their `.grad`. State (momentum, moments) lives in
 * 'optimizer' memory, allocated lazily on the first step so the ledger shows what each costs.
 */
import type { FloatArray } from '../core/dtype.js';
import { keep } from '../core/scope.js';
import { Tensor } from '../core/tensor.js';
import { kernels } from '../backends/index.js';

/** An optimizer's resumable state: its step count and its per-parameter tensors by `${param index}.${slot}`. */
export interface OptimizerState {
  steps: number;
  tensors: Map<string, Tensor>;
}

export abstract class Optimizer {
  /** Learning rate used by the next step (schedules write it). */
  lr: number;
  protected stepCount = 0;
  private readonly state = new Map<Tensor, Tensor[]>();
  /** State tensors per parameter (0 = stateless). */
  protected abstract readonly slots: number;

  constructor(readonly params: Tensor[], lr: number) {
    if (!(lr > 0)) throw new RangeError(`optimizer: learning rate must be > 0, got ${lr}`);
    for (const p of params) if (!p.requiresGrad) throw new Error(`optimizer: parameter '${p.name || p.id}' does not require grad`);
    this.lr = lr;
  }

  get steps(): number {
    return this.stepCount;
  }

  /** Per-parameter state tensors, created zero-filled on first use. */
  protected stateOf(p: Tensor, count: number): Tensor[] {
    let s = this.state.get(p);
    if (!s) {
      s = Array.from({ length: count }, () => keep(Tensor.empty(p.shape, p.dtype, 'optimizer')));
      this.state.set(p, s);
    }
    return s;
  }

  /**
   * The step count and state tensors (views, not copies: save them before the next step), e.g. for
   * a training checkpoint; loadStateDict restores them so that training continues bit for bit.
   *
   * @example
   * const { steps, tensors } = opt.stateDict();   // Adam: '0.0' = m of params[0], '0.1' = v
   * fresh.loadStateDict({ steps, tensors });
   */
  stateDict(): OptimizerState {
    const tensors = new Map<string, Tensor>();
    this.params.forEach((p, i) => this.state.get(p)?.forEach((t, slot) => tensors.set(`${i}.${slot}`, t)));
    return { steps: this.stepCount, tensors };
  }

  /** Restores what stateDict returned (names and shapes must match this optimizer's parameters). */
  loadStateDict(s: { steps: number; tensors: Map<string, { shape: readonly number[]; values: ArrayLike<number> }> }): void {
    if (!Number.isInteger(s.steps) || s.steps < 0) throw new RangeError(`optimizer.loadStateDict: steps must be a non-negative integer, got ${s.steps}`);
    for (const [key, v] of s.tensors) {
      const m = /^(\d+)\.(\d+)$/.exec(key);
      const p = m ? this.params[Number(m[1])] : undefined;
      if (!p || Number(m![2]) >= this.slots) throw new RangeError(`optimizer.loadStateDict: unexpected state '${key}' (${this.params.length} parameters, ${this.slots} state tensors each)`);
      if (v.shape.join() !== p.shape.join()) throw new RangeError(`optimizer.loadStateDict: state '${key}' has shape [${v.shape}], parameter '${p.name || Number(m![1])}' has [${p.shape}]`);
    }
    this.stepCount = s.steps;
    for (const [key, v] of s.tensors) {
      const [i, slot] = key.split('.').map(Number) as [number, number];
      const t = this.stateOf(this.params[i]!, this.slots)[slot]!;
      t.data().set(v.values);
      t.bumpVersion();
    }
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    this.stepCount++;
    for (const p of this.params) {
      if (!p.grad) continue;
      this.update(p, p.grad);
      p.bumpVersion();
    }
  }

  /** Updates parameter `p` in place from its gradient `g` (both contiguous). */
  protected abstract update(p: Tensor, g: Tensor): void;

  /** Drops every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees the optimizer state. */
  dispose(): void {
    for (const s of this.state.values()) for (const t of s) t.dispose();
    this.state.clear();
  }
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

/** SGD with optional (Nesterov) momentum and L2 weight decay, as in PyTorch. */
export class SGD extends Optimizer {
  protected get slots(): number {
    return this.momentum === 0 ? 0 : 1;
  }
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  constructor(params: Tensor[], o: SGDOptions) {
    super(params, o.lr);
    this.momentum = o.momentum ?? 0;
    this.nesterov = o.nesterov ?? false;
    this.weightDecay = o.weightDecay ?? 0;
    if (this.nesterov && this.momentum <= 0) throw new RangeError('SGD: nesterov needs momentum > 0');
  }
  protected update(p: Tensor, g: Tensor): void {
    const buf = this.momentum === 0 ? null : this.stateOf(p, 1)[0]!;
    const step = { lr: this.lr, momentum: this.momentum, weightDecay: this.weightDecay, nesterov: this.nesterov, first: this.stepCount === 1 };
    kernels(p.dtype).sgdUpdate(p, g, buf, step);
    buf?.bumpVersion();
  }
}

export interface AdamOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** Adam (Kingma & Ba) with L2 weight decay added to the gradient. */
export class Adam extends Optimizer {
  protected readonly slots = 2;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  protected readonly decoupled: boolean = false;
  constructor(params: Tensor[], o: AdamOptions = {}) {
    super(params, o.lr ?? 1e-3);
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0;
  }
  protected update(p: Tensor, g: Tensor): void {
    const [m, v] = this.stateOf(p, 2) as [Tensor, Tensor];
    const { beta1, beta2, eps, lr, weightDecay } = this;
    const stepSize = lr / (1 - beta1 ** this.stepCount), invC2 = 1 / Math.sqrt(1 - beta2 ** this.stepCount);
    kernels(p.dtype).adamUpdate(p, g, m, v, { lr, beta1, beta2, eps, weightDecay, decoupled: this.decoupled, stepSize, invC2 });
    m.bumpVersion();
    v.bumpVersion();
  }
}

/** AdamW (Loshchilov & Hutter): weight decay decoupled from the gradient (default 0.01). */
export class AdamW extends Adam {
  protected override readonly decoupled = true;
  constructor(params: Tensor[], o: AdamOptions = {}) {
    super(params, { weightDecay: 0.01, ...o });
  }
}

/** Scales gradients so that their global L2 norm is at most `maxNorm`; returns the norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  let sq = 0;
  for (const p of params) if (p.grad) for (const v of p.grad.data() as FloatArray) sq += v * v;
  const norm = Math.sqrt(sq);
  if (norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const p of params) if (p.grad) {
      const g = p.grad.data() as FloatArray;
      for (let i = 0; i < g.length; i++) g[i]! *= s;
      p.grad.bumpVersion();
    }
  }
  return norm;
}

/** Clamps every gradient element to [-value, value]. */
export function clipGradValue(params: Tensor[], value: number): void {
  for (const p of params) if (p.grad) {
    const g = p.grad.data() as FloatArray;
    for (let i = 0; i < g.length; i++) g[i] = Math.max(-value, Math.min(value, g[i]!));
    p.grad.bumpVersion();
  }
}

/** Sum of squares of a float tensor's values (contiguous). */
function sumSquares(t: Tensor): number {
  let s = 0;
  for (const v of t.data() as FloatArray) s += v * v;
  return s;
}

export interface LarsOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  /** Trust coefficient η (default 0.001). */
  trust?: number;
}

/**
 * LARS (You, Gitman & Ginsburg 2017): per parameter tensor, d = g + β·w scaled by the local rate
 * λ = η·‖w‖/‖d‖ (1 when either norm is 0), then the SGD momentum step on λ·d (v ← m·v + λ·d;
 * w ← w − lr·v: Algorithm 1 for a constant lr, with lr applied after the momentum as in PyTorch).
 *
 * @example
 * const opt = new LARS(model.parameters(), { lr: 1, momentum: 0.9, weightDecay: 5e-4 });
 */
export class LARS extends SGD {
  /** β, applied before the trust ratio (the SGD step itself runs without decay). */
  readonly decay: number;
  readonly trust: number;
  constructor(params: Tensor[], o: LarsOptions) {
    super(params, { lr: o.lr, momentum: o.momentum ?? 0.9 });
    this.decay = o.weightDecay ?? 0;
    this.trust = o.trust ?? 0.001;
    if (!(this.trust > 0)) throw new RangeError(`LARS: trust coefficient must be > 0, got ${o.trust}`);
  }
  protected override update(p: Tensor, g: Tensor): void {
    const d = Tensor.uninitialized(p.shape, p.dtype, 'workspace');
    const dv = d.data() as FloatArray, gv = g.data() as FloatArray, wv = p.data() as FloatArray;
    for (let i = 0; i < dv.length; i++) dv[i] = gv[i]! + this.decay * wv[i]!;
    const wn = Math.sqrt(sumSquares(p)), dn = Math.sqrt(sumSquares(d));
    const local = wn > 0 && dn > 0 ? (this.trust * wn) / dn : 1;
    for (let i = 0; i < dv.length; i++) dv[i]! *= local;
    super.update(p, d);
    d.dispose();
  }
}

/**
 * LAMB (You et al. 2019): Adam moments with bias correction, r = m̂/(√v̂ + ε) + λ·w, and a
 * per-tensor trust ratio: w ← w − lr·(‖w‖/‖r‖)·r (ratio 1 when either norm is 0).
 *
 * @example
 * const opt = new LAMB(model.parameters(), { lr: 0.01, weightDecay: 0.01 });
 */
export class LAMB extends Optimizer {
  protected readonly slots = 2;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  constructor(params: Tensor[], o: AdamOptions = {}) {
    super(params, o.lr ?? 1e-3);
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.eps = o.eps ?? 1e-6;
    this.weightDecay = o.weightDecay ?? 0;
  }
  protected update(p: Tensor, g: Tensor): void {
    const [m, v] = this.stateOf(p, 2) as [Tensor, Tensor];
    const mv = m.data() as FloatArray, vv = v.data() as FloatArray, gv = g.data() as FloatArray, wv = p.data() as FloatArray;
    const c1 = 1 - this.beta1 ** this.stepCount, c2 = 1 - this.beta2 ** this.stepCount;
    const r = new Float64Array(wv.length);
    let rn = 0, wn = 0;
    for (let i = 0; i < wv.length; i++) {
      mv[i] = this.beta1 * mv[i]! + (1 - this.beta1) * gv[i]!;
      vv[i] = this.beta2 * vv[i]! + (1 - this.beta2) * gv[i]! * gv[i]!;
      r[i] = mv[i]! / c1 / (Math.sqrt(vv[i]! / c2) + this.eps) + this.weightDecay * wv[i]!;
      rn += r[i]! * r[i]!;
      wn += wv[i]! * wv[i]!;
    }
    const ratio = wn > 0 && rn > 0 ? Math.sqrt(wn) / Math.sqrt(rn) : 1;
    for (let i = 0; i < wv.length; i++) wv[i]! -= this.lr * ratio * r[i]!;
    m.bumpVersion();
    v.bumpVersion();
  }
}

/**
 * Pruning during training. Unstructured: magnitude pruning of every conv/dense layer but the
 * first and the last (which keep their few, most sensitive weights, the policy of the ternary
 * presets) so that the fraction S of all conv/dense weights is 0, spread over the layers by LAMP
 * (layer-adaptive magnitude pruning, Lee et al. 2021: one global threshold on w² over the sum of
 * the squares of the layer's weights at least as large), which keeps LeNet-5's small conv denser
 * than its 400 -> 120 layer; `allocation: 'uniform'` prunes each layer at the same rate instead
 * (one global magnitude threshold sent almost all the pruning into the 400 -> 120 layer, whose
 * fan-in-scaled weights are smallest, leaving it under 1 % dense). Structured: whole output
 * channels (filters / units) with the smallest L1 norm, per layer, for every conv/dense layer whose
 * output feeds another float- or ternary-weight conv/dense only through BatchNorm, ReLU, max-pool
 * or flatten; a pruned channel's weights, bias and BatchNorm gamma and beta are 0, so `convert`
 * removes it (and the next layer's matching inputs) from the deployed model. Both follow the
 * gradual schedule of Zhu & Gupta (2017): s(t) = S·(1 − (1 − (t − t0)/(t1 − t0))³) between steps
 * t0 = begin·T and t1 = end·T, masks recomputed every `every` steps; the pruned values are 0 in
 * the weights after every step, in the gradients before it and in the optimizer's state.
 *
 * @example
 * const opt = withPruning(new Adam(model.parameters(), { lr: 1e-3 }), model, steps, { sparsity: 0.9 });
 * fit(model, train, test, { epochs, optimizer: opt, ... });   // 90 % of the weights are 0 at the end
 */
import type { FloatArray } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import { BatchNorm, Conv2d, Lambda, Linear, Sequential } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import { MaxPool2dLayer } from './layers.js';
import { layerPlan } from './plan.js';
import { countThreshold, cubicRamp, magnitudeThreshold } from './quantizers.js';

export interface PruneOptions {
  /** Final fraction of weights (unstructured) or of output channels per layer (structured) set to 0, in [0, 1). */
  sparsity: number;
  /** Whole output channels instead of single weights. */
  structured?: boolean;
  /** Fractions of training at which pruning starts and reaches `sparsity` (defaults 0.1 and 0.6). */
  begin?: number;
  end?: number;
  /** Steps between mask updates (default: 20 updates over [begin, end]). */
  every?: number;
  /**
   * Unstructured only: how the pruned weights are spread over the layers (the first and last
   * layers stay dense either way). 'uniform': every pruned layer at the same rate. 'lamp'
   * (default): one global threshold on LAMP scores (Lee et al., ICLR 2021), w_u² over the sum of
   * the squares of the layer's weights at least as large; it keeps small layers (the convs)
   * denser than large ones.
   */
  allocation?: 'uniform' | 'lamp';
}

/** A layer whose output channels structured pruning may remove, with the BatchNorm that follows it (if any). */
export interface ChannelGroup {
  layer: Linear | Conv2d;
  bn: BatchNorm | null;
  /** The conv/dense layer reading its output. */
  next: Linear | Conv2d;
}

const passesZero = (m: Module): boolean =>
  m instanceof MaxPool2dLayer || (m instanceof Lambda && ['relu', 'flatten', 'maxpool2d'].includes(m.label));
const removable = (m: Linear | Conv2d): boolean => ['float', 'ternary_weights'].includes(layerPlan(m)!.kernel);

/** The layers structured pruning works on (see the module comment), in model order. */
export function channelGroups(model: Module): ChannelGroup[] {
  const groups: ChannelGroup[] = [];
  for (const [, seq] of model.namedModules()) {
    if (!(seq instanceof Sequential)) continue;
    const layers = seq.layers;
    layers.forEach((l, i) => {
      if (!(l instanceof Linear || l instanceof Conv2d) || !removable(l)) return;
      let bn: BatchNorm | null = null, j = i + 1;
      for (; j < layers.length; j++) {
        const m = layers[j]!;
        if (m instanceof BatchNorm && !bn) bn = m;
        else if (!passesZero(m)) break;
      }
      const next = layers[j];
      if ((next instanceof Linear || next instanceof Conv2d) && removable(next) && layerPlan(next)!.inputBits === 32) groups.push({ layer: l, bn, next });
    });
  }
  return groups;
}

/** Output channels of a group's layer that are pruned (weights, bias, BatchNorm gamma and beta all 0): what convert removes. */
export function deadChannels({ layer, bn }: ChannelGroup): number[] {
  const w = layer.weight.values() as FloatArray, outC = layer.weight.shape[0]!, inner = w.length / outC;
  const b = layer.bias?.values(), gamma = bn?.gamma.values(), beta = bn?.beta.values();
  const dead: number[] = [];
  for (let c = 0; c < outC; c++) {
    let zero = (!b || b[c] === 0) && (!bn || (gamma![c] === 0 && beta![c] === 0));
    for (let i = c * inner; zero && i < (c + 1) * inner; i++) zero = w[i] === 0;
    if (zero) dead.push(c);
  }
  return dead.length === outC ? dead.slice(1) : dead;
}

/**
 * How many weights of each layer LAMP prunes when `total` weights go: the `total` smallest LAMP
 * scores over all layers, a weight's score being w² over the sum of w'² for the weights of its
 * layer at least as large (at least the largest weight of each layer survives: its score is 1).
 */
export function lampCounts(layers: readonly ArrayLike<number>[], total: number): number[] {
  const scores: { score: number; layer: number }[] = [];
  layers.forEach((v, layer) => {
    const sq = Float64Array.from(v, (x) => x * x).sort();
    let tail = 0;
    for (let u = sq.length - 1; u >= 0; u--) {
      tail += sq[u]!;
      scores.push({ score: tail > 0 ? sq[u]! / tail : 0, layer });
    }
  });
  scores.sort((a, b) => a.score - b.score);
  const counts = layers.map(() => 0);
  for (let i = 0; i < Math.min(total, scores.length); i++) counts[scores[i]!.layer]!++;
  return counts;
}

/** Every conv/dense layer of the model (unstructured pruning's targets). */
function weightLayers(model: Module): (Linear | Conv2d)[] {
  return model.namedModules().map(([, m]) => m).filter((m): m is Linear | Conv2d => m instanceof Linear || m instanceof Conv2d);
}

/** Keeps the masks of a model's weights and applies them; `update(step)` follows the schedule. */
export class Pruner {
  readonly sparsity: number;
  readonly structured: boolean;
  readonly t0: number;
  readonly t1: number;
  readonly every: number;
  /** Per weight tensor: 1 = kept. */
  private masks = new Map<Tensor, Uint8Array>();
  private readonly groups: ChannelGroup[];
  /** Every conv/dense layer, and those pruned (all but the first and the last) at `rate` times the overall sparsity. */
  private readonly all: (Linear | Conv2d)[];
  private readonly layers: (Linear | Conv2d)[];
  private readonly rate: number;
  readonly allocation: 'uniform' | 'lamp';

  constructor(readonly model: Module, readonly totalSteps: number, o: PruneOptions) {
    if (!(o.sparsity >= 0 && o.sparsity < 1)) throw new RangeError(`prune: sparsity must be in [0, 1), got ${o.sparsity}`);
    const begin = o.begin ?? 0.1, end = o.end ?? 0.6;
    if (!(begin >= 0 && begin <= end && end <= 1)) throw new RangeError(`prune: need 0 <= begin <= end <= 1, got begin ${begin}, end ${end}`);
    this.sparsity = o.sparsity;
    this.structured = o.structured ?? false;
    this.allocation = o.allocation ?? 'lamp';
    if (!['uniform', 'lamp'].includes(this.allocation)) throw new RangeError(`prune: allocation must be 'uniform' or 'lamp', got '${o.allocation}'`);
    this.t0 = Math.floor(begin * totalSteps);
    this.t1 = Math.max(this.t0, Math.floor(end * totalSteps));
    this.every = o.every ?? Math.max(1, Math.round((this.t1 - this.t0) / 20));
    this.groups = this.structured ? channelGroups(model) : [];
    this.all = this.structured ? [] : weightLayers(model);
    this.layers = this.all.length > 2 ? this.all.slice(1, -1) : this.all.slice(1);
    const total = this.all.reduce((n, l) => n + l.weight.size, 0), pruned = this.layers.reduce((n, l) => n + l.weight.size, 0);
    this.rate = pruned ? total / pruned : 1;
    if (!this.structured && this.sparsity * this.rate >= 1) throw new RangeError(`prune: sparsity ${this.sparsity} of all weights needs more than every weight outside the first and last layers`);
    if (this.structured && !this.groups.length) throw new Error('prune: the model has no channels that structured pruning can remove (needs a float or ternary conv/dense layer feeding another one)');
  }

  /** Target sparsity after `step` optimizer steps. */
  sparsityAt(step: number): number {
    if (step < this.t0) return 0;
    if (step >= this.t1) return this.sparsity;
    return this.sparsity * cubicRamp((step - this.t0) / (this.t1 - this.t0));
  }

  /** The last step at or before `step` whose mask update is due (−1: none yet). */
  lastUpdate(step: number): number {
    if (step < this.t0) return -1;
    return step >= this.t1 ? this.t1 : this.t0 + Math.floor((step - this.t0) / this.every) * this.every;
  }

  /**
   * After optimizer step number `step` (1-based): recompute masks when due (and zero the
   * `optimizer`'s state of the pruned values), then zero the pruned weights. Without masks yet (a
   * resumed run) the masks of the last due update are rebuilt first.
   */
  update(step: number, optimizer?: Optimizer): void {
    const last = this.lastUpdate(step);
    if (last >= 0 && (last === step || this.masks.size === 0)) {
      this.recompute(this.sparsityAt(last));
      if (optimizer) this.maskState(optimizer);
    }
    this.apply();
  }

  /** Zeroes the gradients of the pruned values (before an optimizer step, so that momentum and Adam moments stay 0 there). */
  maskGradients(): void {
    for (const [t, m] of this.masks) {
      if (!t.grad) continue;
      const g = t.grad.data() as FloatArray;
      for (let i = 0; i < g.length; i++) if (!m[i]) g[i] = 0;
      t.grad.bumpVersion();
    }
  }

  /** Zeroes the optimizer's state (momentum, moments) of the pruned values: a pruned weight carries no update history. */
  maskState(optimizer: Optimizer): void {
    const { tensors } = optimizer.stateDict();
    for (const [t, m] of this.masks) {
      const i = optimizer.params.indexOf(t);
      for (let slot = 0; i >= 0 && tensors.has(`${i}.${slot}`); slot++) {
        const st = tensors.get(`${i}.${slot}`)!, d = st.data() as FloatArray;
        for (let j = 0; j < d.length; j++) if (!m[j]) d[j] = 0;
        st.bumpVersion();
      }
    }
  }

  private recompute(s: number): void {
    this.masks.clear();
    if (this.structured) {
      for (const { layer, bn } of this.groups) {
        const w = layer.weight.values() as FloatArray, outC = layer.weight.shape[0]!, inner = w.length / outC;
        const norms = Array.from({ length: outC }, (_, c) => {
          let a = 0;
          for (let i = c * inner; i < (c + 1) * inner; i++) a += Math.abs(w[i]!);
          return a;
        });
        const cut = magnitudeThreshold(norms, s);
        const keep = norms.map((v) => v >= cut);
        // At least one channel survives (ties at 0 could otherwise remove all).
        if (!keep.some(Boolean)) keep[norms.indexOf(Math.max(...norms))] = true;
        const perChannel = (t: Tensor, n: number) => this.masks.set(t, Uint8Array.from({ length: t.size }, (_, i) => (keep[Math.floor(i / n)] ? 1 : 0)));
        perChannel(layer.weight, inner);
        if (layer.bias) perChannel(layer.bias, 1);
        if (bn) (perChannel(bn.gamma, 1), perChannel(bn.beta, 1));
      }
      return;
    }
    const values = this.layers.map((l) => l.weight.values() as FloatArray);
    const counts = this.allocation === 'lamp' ? lampCounts(values, Math.floor(s * this.rate * values.reduce((n, v) => n + v.length, 0))) : null;
    this.layers.forEach((l, i) => {
      const v = values[i]!, cut = counts ? countThreshold(v, counts[i]!) : magnitudeThreshold(v, s * this.rate);
      this.masks.set(l.weight, Uint8Array.from(v, (x) => (Math.abs(x) >= cut ? 1 : 0)));
    });
  }

  /** Zeroes every pruned value. */
  apply(): void {
    for (const [t, m] of this.masks) {
      const d = t.data() as FloatArray;
      for (let i = 0; i < d.length; i++) if (!m[i]) d[i] = 0;
      t.bumpVersion();
    }
  }

  /** Fraction of zeros among all conv/dense weights (unstructured) or of removed channels (structured). */
  achieved(): number {
    if (this.structured) {
      const dead = this.groups.reduce((n, g) => n + deadChannels(g).length, 0);
      const total = this.groups.reduce((n, g) => n + g.layer.weight.shape[0]!, 0);
      return total ? dead / total : 0;
    }
    let zeros = 0, total = 0;
    for (const l of this.all) for (const v of l.weight.values() as FloatArray) (total++, v === 0 && zeros++);
    return total ? zeros / total : 0;
  }
}

/**
 * The optimizer with pruning around every step (as withConstraints does for kernel constraints):
 * the pruned values' gradients are zeroed before it, `pruner.update(step)` runs after it, and each
 * mask update also zeroes the optimizer state of the newly pruned values, so a pruned weight is
 * 0 in the weights, the gradients and the momentum/Adam moments. `stepsDone` when a run resumes.
 * Returns the optimizer and its pruner.
 */
export function withPruning<O extends Optimizer>(optimizer: O, model: Module, totalSteps: number, o: PruneOptions, stepsDone = 0): { optimizer: O; pruner: Pruner } {
  const pruner = new Pruner(model, totalSteps, o);
  const step = optimizer.step.bind(optimizer);
  let done = stepsDone;
  if (done > 0) pruner.update(done, optimizer);
  optimizer.step = () => {
    pruner.maskGradients();
    step();
    pruner.update(++done, optimizer);
  };
  return { optimizer, pruner };
}

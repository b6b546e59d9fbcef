/**
 * Quantizers: forward map + pseudo-gradient + precision + JSON config, addressable by name
 * (Larq aliases). Training keeps latent float weights; `forward` returns fake-quantized floats and
 * records the pseudo-gradient for autograd. sign(0) = +1 everywhere.
 *
 * @example
 * const q = quantizer('ste_sign');          // or quantizer({ name: 'ste_sign', clipValue: 0.5 })
 * const xb = q.forward(x);                   // ±1, gradient g·1[|x| ≤ 1]
 * JSON.stringify(q.config());                // {"name":"ste_sign","clipValue":1}
 */
import type { FloatArray } from '../core/dtype.js';
import { fromValues, Tensor } from '../core/tensor.js';
import { noGrad } from '../autograd/mode.js';
import { add, addScalar, contiguous, div, mul, mulScalar, onesLike, relu, sub } from '../ops/elementwise.js';
import { conv2d, matmul, reshape } from '../ops/index.js';
import { fmt, ShapeError } from '../core/shape.js';
import { Rng } from '../util/rng.js';
import { parameter } from '../nn/module.js';
import { kernels } from '../backends/index.js';
import { fakeQuant, fakeQuantGrad, sbnnWeight, sin, type FakeQuantAttrs } from './ops.js';
import { riceEncodeBits } from './bitcode.js';
import { packSignRows } from './kernels.js';
import { decompose, keptRows, reconstruct, smartdealOptions, storageBits, type SmartDealFactors, type SmartDealOptions } from './smartdeal.js';

/** Widths a nested-precision weight can be read at (bits). */
export const NESTED_WIDTHS = [8, 7, 6, 5, 4, 3, 2] as const;
/** The widths once-QAT trains together by default (vertical-layered representation). */
export const ONCE_QAT_WIDTHS = [8, 6, 4, 3, 2];

/**
 * Throws a RangeError naming `what` unless bits is an integer in 2..8.
 *
 * @example
 * checkNestedBits(4, '--bits');   // 4
 */
export function checkNestedBits(bits: unknown, what: string): number {
  if (!Number.isInteger(bits) || (bits as number) < 2 || (bits as number) > 8) throw new RangeError(`${what}: nested bits must be an integer in 2..8, got ${JSON.stringify(bits)}`);
  return bits as number;
}

/** A quantizer's serialisable description: `name` is the alias, the rest its options. */
export interface QuantizerConfig {
  name: string;
  [option: string]: unknown;
}

/**
 * How conversion (convert.ts) deploys a quantizer's values; plan.ts picks the layer's kernel from
 * the pair (input quantizer, kernel quantizer) of these, never from quantizer names.
 * - sign: ±1 (bit-packed); ternary: {−1, 0, +1} at |w| ≥ threshold(w) (two bit planes);
 *   int8: round(w / step()) in int8; nested: the 8-bit codes round(w / channelScale(w)) in int8,
 *   read at any width 2..8 by dropping low bits (NestedWeight); float: the fake-quantized values
 *   stored as float32.
 */
export interface QuantDeployment {
  values: 'sign' | 'ternary' | 'int8' | 'nested' | 'smartdeal' | 'float';
  /** A per-output-channel float scale stored with packed weights ([outC, 1, ...]), when there is one. */
  channelScale?(w: Tensor): Tensor | null;
  /** ternary: the magnitude at and above which a weight is ±1. */
  threshold?(w: Tensor): number;
  /** int8: the quantization step (value = code · step). */
  step?(): number;
  /** smartdeal: the factors of the latent weight (what the model computes with is reconstruct(factors)). */
  factors?(w: Tensor): SmartDealFactors;
  /** Stored bits per weight when it is not a fixed width (smartdeal: codes, row mask and basis over the weight count). */
  bitsPerWeight?(w: Tensor): number;
  /** Multiply-accumulates per output value when the kernel does not run a dense product (smartdeal: r·(K + kept segments)). */
  macsPerOutput?(w: Tensor): number;
  /** Fraction of the weights stored as structural zeros (smartdeal: segments with a zero coefficient row). */
  sparsity?(w: Tensor): number;
  /** The tensor whose signs/values are packed, when it is not the latent weight itself (IR-Net: balanced weights). */
  latent?(w: Tensor): Tensor;
  /** ternary: negative codes weigh −ratio (TTQ: W_n / W_p; the positive scale W_p is the channel scale); absent: −1. */
  negativeRatio?(): number;
  /** sign: the two weight values [α, β] of code 0 (packed bit 1) and code 1 (SBNN), when they are not ∓scale. */
  levels?(w: Tensor): [number, number];
}

export abstract class Quantizer {
  /** Alias under which `quantizer()` finds this class. */
  abstract readonly name: string;
  /** Bits per value at inference (summary and conversion use it). */
  abstract readonly precision: number;
  /** Fake-quantized x (float), differentiable through the pseudo-gradient. */
  abstract forward(x: Tensor): Tensor;
  /** ∂q/∂x elementwise as autograd applies it (constant per-channel scales included). */
  abstract pseudoGradient(x: Tensor): Tensor;
  abstract config(): QuantizerConfig;
  /** Learned quantizer parameters (PACT alpha, LSQ step); layers register them. */
  parameters(): Tensor[] {
    return [];
  }
  /** How conversion deploys it (default: fake-quantized values kept in float32). */
  deployment(): QuantDeployment {
    return { values: 'float' };
  }
  /**
   * Maintenance of the latent weights after each optimizer step (`constrainWeights` calls it after
   * the kernel constraint): pruning ternary's weight decay, hyperspherical projection. Default none.
   */
  afterStep(_w: Tensor): void {}
  /**
   * Called once by the layer before it registers parameters(): `features` = values per filter
   * (kernel: inC·k·k or inFeatures) or per position (input: channels or features); `next` draws
   * seeds from the layer's initializer. Quantizers with shape-dependent parameters (FDA's noise
   * adaptation) create them here. Default none.
   */
  bind(_role: 'kernel' | 'input', _features: number, _next: () => number): void {}
}

/**
 * Per-channel statistic of |x| along `axis` (the output-channel axis), as a stop-gradient
 * constant shaped to broadcast against x: mean|x| over the elements passing `keep`.
 */
export function channelMeanAbs(x: Tensor, axis: number, keep?: (absValue: number) => boolean): Tensor {
  if (axis < 0 || axis >= x.rank) throw new RangeError(`channelMeanAbs: axis ${axis} out of range for rank ${x.rank}`);
  const v = readable(x);
  const channels = x.shape[axis]!;
  const inner = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const sums = new Float64Array(channels), counts = new Float64Array(channels);
  // Element i is channel ⌊i / inner⌋ mod channels: walked block by block, in the order of i.
  for (let start = 0, c = 0; start < v.length; start += inner, c = c + 1 === channels ? 0 : c + 1) {
    let s = sums[c]!, n = counts[c]!;
    if (!keep) {
      // Every element (most callers): no call per element.
      for (let i = start; i < start + inner; i++) s += Math.abs(v[i]!);
      n += inner;
    } else {
      for (let i = start; i < start + inner; i++) {
        const a = Math.abs(v[i]!);
        if (keep(a)) {
          s += a;
          n++;
        }
      }
    }
    sums[c] = s;
    counts[c] = n;
  }
  const means = Array.from(sums, (s, c) => (counts[c] ? s / counts[c]! : 0));
  return fromValues(means, x.shape.map((d, i) => (i === axis ? d : 1)), x.dtype);
}

/** x's elements to read (no copy when x is contiguous; the caller must not keep or write them). */
function readable(x: Tensor): FloatArray {
  return (x.isContiguous() ? x.data() : x.values()) as FloatArray;
}

/**
 * Mean and biased variance of `channels` runs along x viewed as [outer, channels, inner], on the
 * backend's channelMoments kernel (float64 sums of row partials), as [channels] float64 arrays.
 */
function moments(x: Tensor, outer: number, channels: number, inner: number): { mean: Float64Array; variance: Float64Array } {
  const xc = noGrad(() => contiguous(x));
  const mean = Tensor.empty([channels], x.dtype), variance = Tensor.empty([channels], x.dtype);
  kernels(x.dtype).channelMoments(xc, mean, variance, { outer, channels, inner });
  const out = { mean: Float64Array.from(mean.data()), variance: Float64Array.from(variance.data()) };
  for (const t of [mean, variance]) t.dispose();
  if (xc !== x) xc.dispose();
  return out;
}

function meanAbs(x: Tensor): number {
  const v = readable(x);
  let s = 0;
  for (let i = 0; i < v.length; i++) s += Math.abs(v[i]!);
  return v.length ? s / v.length : 0;
}

/** A quantizer that is one elementwise map (no scale, no learned parameter). */
abstract class ElementwiseQuantizer extends Quantizer {
  protected abstract attrs(x: Tensor): FakeQuantAttrs;
  forward(x: Tensor): Tensor {
    return fakeQuant(x, this.attrs(x));
  }
  pseudoGradient(x: Tensor): Tensor {
    return noGrad(() => fakeQuantGrad(x, null, this.attrs(x)));
  }
}

/** A 1-bit step whose pseudo-gradient passes g where |x| ≤ clipValue (null = everywhere). */
abstract class ClippedStep extends ElementwiseQuantizer {
  readonly precision = 1;
  readonly clipValue: number | null;
  protected abstract readonly kind: 'sign' | 'heaviside';
  constructor(o: { clipValue?: number | null } = {}) {
    super();
    this.clipValue = o.clipValue === undefined ? 1 : o.clipValue;
  }
  protected attrs(): FakeQuantAttrs {
    return { kind: this.kind, clip: this.clipValue };
  }
  config(): QuantizerConfig {
    return { name: this.name, clipValue: this.clipValue };
  }
}

/** Forward: +1 if x ≥ 0 else −1. Backward: g·1[|x| ≤ clipValue] (BinaryNet hard-tanh STE); clipValue null = no clip. */
export class SteSign extends ClippedStep {
  readonly name = 'ste_sign';
  protected readonly kind = 'sign';
  override deployment(): QuantDeployment {
    return { values: 'sign' };
  }
}

/** Forward: sign(x). Backward: g·(2 − 2|x|) for |x| ≤ 1, else 0 (Bi-Real Net). */
export class ApproxSign extends ElementwiseQuantizer {
  readonly name = 'approx_sign';
  readonly precision = 1;
  protected attrs(): FakeQuantAttrs {
    return { kind: 'approx_sign' };
  }
  override deployment(): QuantDeployment {
    return { values: 'sign' };
  }
  config(): QuantizerConfig {
    return { name: this.name };
  }
}

/** Forward: sign(x). Backward: g·β(2 − βx·tanh(βx/2))/(1 + cosh(βx)) (BNN+), β = 5. */
export class SwishSign extends ElementwiseQuantizer {
  readonly name = 'swish_sign';
  readonly precision = 1;
  readonly beta: number;
  constructor(o: { beta?: number } = {}) {
    super();
    this.beta = o.beta ?? 5;
  }
  protected attrs(): FakeQuantAttrs {
    return { kind: 'swish_sign', beta: this.beta };
  }
  override deployment(): QuantDeployment {
    return { values: 'sign' };
  }
  config(): QuantizerConfig {
    return { name: this.name, beta: this.beta };
  }
}

/** Forward: 1 if x > 0 else 0. Backward: g·1[|x| ≤ clipValue]. */
export class SteHeaviside extends ClippedStep {
  readonly name = 'ste_heaviside';
  protected readonly kind = 'heaviside';
}

/**
 * Forward: s_c·sign(x), s_c = mean|x| over every axis but `axis` (the output channel; 0 for
 * OIHW/[out, in] weights), a stop-gradient constant. Backward: g·s_c·1[|x| ≤ clipValue].
 * This is the XNOR-Net/BWN weight scale alpha = mean|W| per filter.
 */
export class MagnitudeAwareSign extends Quantizer {
  readonly name = 'magnitude_aware_sign';
  readonly precision = 1;
  readonly clipValue: number;
  readonly axis: number;
  constructor(o: { clipValue?: number; axis?: number } = {}) {
    super();
    this.clipValue = o.clipValue ?? 1;
    this.axis = o.axis ?? 0;
  }
  forward(x: Tensor): Tensor {
    const scale = channelMeanAbs(x, this.axis);
    const out = mul(fakeQuant(x, { kind: 'sign', clip: this.clipValue }), scale);
    scale.dispose();
    return out;
  }
  pseudoGradient(x: Tensor): Tensor {
    return noGrad(() => mul(fakeQuantGrad(x, null, { kind: 'sign', clip: this.clipValue }), channelMeanAbs(x, this.axis)));
  }
  config(): QuantizerConfig {
    return { name: this.name, clipValue: this.clipValue, axis: this.axis };
  }
  override deployment(): QuantDeployment {
    return { values: 'sign', channelScale: (w) => channelMeanAbs(w, 0) };
  }
}

/**
 * Forward: +1 if x ≥ Δ, −1 if x ≤ −Δ, else 0; Δ = thresholdValue, or 0.7·mean|x| (whole tensor)
 * with `ternaryWeightNetworks`. With `scaled` (TWN), multiplied by alpha_c = mean of |x| over
 * |x| ≥ Δ per output channel (stop-gradient). Backward: g·(alpha_c)·1[|x| ≤ clipValue].
 */
export class SteTern extends Quantizer {
  readonly name = 'ste_tern';
  readonly precision = 2;
  readonly thresholdValue: number;
  readonly ternaryWeightNetworks: boolean;
  readonly scaled: boolean;
  readonly clipValue: number;
  readonly axis: number;
  constructor(o: { thresholdValue?: number; ternaryWeightNetworks?: boolean; scaled?: boolean; clipValue?: number; axis?: number } = {}) {
    super();
    this.thresholdValue = o.thresholdValue ?? 0.05;
    this.ternaryWeightNetworks = o.ternaryWeightNetworks ?? false;
    this.scaled = o.scaled ?? false;
    this.clipValue = o.clipValue ?? 1;
    this.axis = o.axis ?? 0;
  }
  /** Δ for this tensor. */
  threshold(x: Tensor): number {
    return this.ternaryWeightNetworks ? 0.7 * meanAbs(x) : this.thresholdValue;
  }
  /** alpha_c (TWN), or null when unscaled. */
  scale(x: Tensor): Tensor | null {
    const delta = this.threshold(x);
    return this.scaled ? channelMeanAbs(x, this.axis, (a) => a >= delta) : null;
  }
  private attrs(x: Tensor): FakeQuantAttrs {
    return { kind: 'tern', threshold: this.threshold(x), clip: this.clipValue };
  }
  forward(x: Tensor): Tensor {
    const t = fakeQuant(x, this.attrs(x));
    const s = this.scale(x);
    if (!s) return t;
    const out = mul(t, s);
    t.dispose();
    s.dispose();
    return out;
  }
  pseudoGradient(x: Tensor): Tensor {
    return noGrad(() => {
      const d = fakeQuantGrad(x, null, this.attrs(x));
      const s = this.scale(x);
      return s ? mul(d, s) : d;
    });
  }
  config(): QuantizerConfig {
    return { name: this.name, thresholdValue: this.thresholdValue, ternaryWeightNetworks: this.ternaryWeightNetworks, scaled: this.scaled, clipValue: this.clipValue, axis: this.axis };
  }
  override deployment(): QuantDeployment {
    const d: QuantDeployment = { values: 'ternary', threshold: (w) => this.threshold(w) };
    if (this.scaled) d.channelScale = (w) => this.scale(w);
    return d;
  }
}

/**
 * DoReFa, k bits, n = 2^k − 1. mode 'activations': q = round(clip(x, 0, 1)·n)/n, backward
 * g·1[0 ≤ x ≤ 1]. mode 'weights': q = 2·round((tanh(x)/(2M) + ½)·n)/n − 1, M = sg(max|tanh x|),
 * backward g·(1 − tanh²x)/M (straight through round).
 */
export class DoReFa extends Quantizer {
  readonly name = 'dorefa';
  readonly kBit: number;
  readonly mode: 'activations' | 'weights';
  constructor(o: { kBit?: number; mode?: 'activations' | 'weights' } = {}) {
    super();
    this.kBit = o.kBit ?? 2;
    this.mode = o.mode ?? 'activations';
    if (!Number.isInteger(this.kBit) || this.kBit < 1 || this.kBit > 16) throw new RangeError(`dorefa: kBit must be an integer in 1..16, got ${o.kBit}`);
    if (this.mode !== 'activations' && this.mode !== 'weights') throw new RangeError(`dorefa: mode must be 'activations' or 'weights', got '${o.mode}'`);
  }
  get precision(): number {
    return this.kBit;
  }
  private attrs(x: Tensor): FakeQuantAttrs {
    const levels = 2 ** this.kBit - 1;
    if (this.mode === 'activations') return { kind: 'dorefa_act', levels };
    const v = x.values() as FloatArray;
    let m = 0;
    for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(Math.tanh(v[i]!)));
    return { kind: 'dorefa_weight', levels, maxTanh: m || 1 };
  }
  forward(x: Tensor): Tensor {
    return fakeQuant(x, this.attrs(x));
  }
  pseudoGradient(x: Tensor): Tensor {
    return noGrad(() => fakeQuantGrad(x, null, this.attrs(x)));
  }
  config(): QuantizerConfig {
    return { name: this.name, kBit: this.kBit, mode: this.mode };
  }
}

/**
 * PACT, k bits: y = clip(x, 0, alpha), q = round(y·n/alpha)·alpha/n with a learned alpha
 * (init 10; add its L2 penalty in the loss). Backward: ∂q/∂x = 1[0 ≤ x < alpha],
 * ∂q/∂alpha = 1[x ≥ alpha].
 */
export class Pact extends Quantizer {
  readonly name = 'pact';
  readonly bits: number;
  readonly alpha: Tensor;
  constructor(o: { bits?: number; alpha?: number } = {}) {
    super();
    this.bits = o.bits ?? 4;
    const a = o.alpha ?? 10;
    if (!(a > 0)) throw new RangeError(`pact: alpha must be positive, got ${a}`);
    this.alpha = parameter([a], [1], 'alpha');
  }
  get precision(): number {
    return this.bits;
  }
  private attrs(): FakeQuantAttrs {
    return { kind: 'pact', levels: 2 ** this.bits - 1 };
  }
  forward(x: Tensor): Tensor {
    return fakeQuant(x, this.attrs(), this.alphaFor(x));
  }
  pseudoGradient(x: Tensor): Tensor {
    return noGrad(() => fakeQuantGrad(x, this.alphaFor(x), this.attrs()));
  }
  /** The learned scalar in x's dtype (float64 gradient checks run the same code). */
  private alphaFor(x: Tensor): Tensor {
    return x.dtype === this.alpha.dtype ? this.alpha : fromValues(this.alpha.values(), [1], x.dtype);
  }
  override parameters(): Tensor[] {
    return [this.alpha];
  }
  config(): QuantizerConfig {
    return { name: this.name, bits: this.bits, alpha: this.alpha.item() };
  }
}

/**
 * LSQ (learned step size), b bits: v̂ = round(clip(v/s, −Q_N, Q_P))·s; signed: Q_N = 2^(b−1),
 * Q_P = 2^(b−1) − 1; unsigned: Q_N = 0, Q_P = 2^b − 1. Backward: ∂v̂/∂v = 1[−Q_N < v/s < Q_P];
 * ∂v̂/∂s = −Q_N | Q_P | round(v/s) − v/s (below | above | inside), times the gradient scale
 * 1/√(N·Q_P), N = elements per example. s is initialised from the first batch seen:
 * s = 2·mean|v|/√Q_P (or the `step` option).
 */
export class Lsq extends Quantizer {
  readonly name = 'lsq';
  readonly bits: number;
  readonly signed: boolean;
  readonly step: Tensor;
  /** Any write to the step (initialisation, optimizer, loading a state dict) bumps its version. */
  private readonly createdVersion: number;
  constructor(o: { bits?: number; signed?: boolean; step?: number } = {}) {
    super();
    this.bits = o.bits ?? 8;
    this.signed = o.signed ?? true;
    if (!Number.isInteger(this.bits) || this.bits < 2 || this.bits > 16) throw new RangeError(`lsq: bits must be an integer in 2..16, got ${o.bits}`);
    this.step = parameter([o.step ?? 1], [1], 'step');
    this.createdVersion = o.step === undefined ? this.step.storage.version : -1;
  }
  /** False until the step was set (option, first batch, optimizer or loaded state). */
  get initialized(): boolean {
    return this.step.storage.version !== this.createdVersion;
  }
  get precision(): number {
    return this.bits;
  }
  get qn(): number {
    return this.signed ? 2 ** (this.bits - 1) : 0;
  }
  get qp(): number {
    return this.signed ? 2 ** (this.bits - 1) - 1 : 2 ** this.bits - 1;
  }
  private attrs(x: Tensor): FakeQuantAttrs {
    const perExample = x.rank > 1 ? x.size / x.shape[0]! : x.size;
    return { kind: 'lsq', qn: this.qn, qp: this.qp, gradScale: 1 / Math.sqrt(perExample * this.qp) };
  }
  private stepFor(x: Tensor): Tensor {
    if (!this.initialized) {
      const s = (2 * meanAbs(x)) / Math.sqrt(this.qp) || 1;
      this.step.data().set([s]);
      this.step.bumpVersion();
    }
    return x.dtype === this.step.dtype ? this.step : fromValues(this.step.values(), [1], x.dtype);
  }
  forward(x: Tensor): Tensor {
    return fakeQuant(x, this.attrs(x), this.stepFor(x));
  }
  pseudoGradient(x: Tensor): Tensor {
    return noGrad(() => fakeQuantGrad(x, this.stepFor(x), this.attrs(x)));
  }
  override parameters(): Tensor[] {
    return [this.step];
  }
  config(): QuantizerConfig {
    return { name: this.name, bits: this.bits, signed: this.signed, step: this.initialized ? this.step.item() : undefined };
  }
  /** Signed 8-bit LSQ deploys as int8 (code · step); other widths keep float values. */
  override deployment(): QuantDeployment {
    return this.bits === 8 && this.signed ? { values: 'int8', step: () => this.step.item() } : { values: 'float' };
  }
}

/**
 * A quantizer whose surrogate gradient follows training progress (0 at the start, 1 at the end);
 * `setQuantProgress(model, p)` (layers.ts) sets it on every layer, e.g. once per epoch.
 */
export interface Scheduled {
  setProgress(p: number): void;
}

export const isScheduled = (q: unknown): q is Scheduled => typeof (q as Scheduled | null)?.setProgress === 'function';

/** A 1-bit sign whose pseudo-gradient follows the training progress p in [0, 1] (EDE, DTE). */
abstract class ScheduledSign extends ElementwiseQuantizer implements Scheduled {
  readonly precision = 1;
  progress = 0;
  setProgress(p: number): void {
    this.progress = Math.min(1, Math.max(0, p));
  }
  override deployment(): QuantDeployment {
    return { values: 'sign' };
  }
}

/**
 * IR-Net's error-decay estimator (EDE) on sign: forward sign(x); backward k·t·(1 − tanh²(t·x)),
 * t = tMin·10^(p·log10(tMax/tMin)) at training progress p, k = max(1/t, 1): near identity early
 * (updating ability), near sign late (accuracy). Activations of IR-Net; Libra-PB weights use it
 * through `irnet_weight`.
 */
export class EdeSign extends ScheduledSign {
  readonly name: string = 'ede_sign';
  readonly tMin: number;
  readonly tMax: number;
  constructor(o: { tMin?: number; tMax?: number } = {}) {
    super();
    this.tMin = o.tMin ?? 0.1;
    this.tMax = o.tMax ?? 10;
  }
  /** (t, k) at the current progress. */
  schedule(): { t: number; k: number } {
    const t = this.tMin * 10 ** (this.progress * Math.log10(this.tMax / this.tMin));
    return { t, k: Math.max(1 / t, 1) };
  }
  protected attrs(): FakeQuantAttrs {
    return { kind: 'ede', ...this.schedule() };
  }
  config(): QuantizerConfig {
    return { name: this.name, tMin: this.tMin, tMax: this.tMax };
  }
}

/**
 * DIR-Net's distribution-sensitive two-stage estimator (DTE) on sign, as re-implemented here from
 * the paper's description (no official code): forward sign(x); σ = the standard deviation of x
 * (per call, stop-gradient). Stage 1 (progress p < switchAt): the identity-like clipped gradient
 * 1[|x| ≤ w·σ], the width w shrinking linearly from 3 to 1 (updating ability). Stage 2: the EDE
 * shape on the standardized input, k·t·(1 − tanh²(t·x/σ)), t = tMax^((p − switchAt)/(1 − switchAt))
 * from 1 to tMax, k = max(1/t, 1): towards the sign's gradient (accuracy). At the switch both
 * give gradient 1 over about one σ.
 */
export class DteSign extends ScheduledSign {
  readonly name = 'dte_sign';
  readonly tMax: number;
  readonly switchAt: number;
  constructor(o: { tMax?: number; switchAt?: number } = {}) {
    super();
    this.tMax = o.tMax ?? 10;
    this.switchAt = o.switchAt ?? 0.5;
    if (!(this.switchAt > 0 && this.switchAt < 1)) throw new RangeError(`dte_sign: switchAt must be in (0, 1), got ${this.switchAt}`);
  }
  protected attrs(x: Tensor): FakeQuantAttrs {
    // σ over the whole tensor, one row per example summed by the kernel (long rows: SIMD, few f64 steps).
    const inner = x.rank > 1 ? x.size / x.shape[0]! : Math.max(1, x.size);
    const sigma = (x.size ? Math.sqrt(moments(x, x.size / inner, 1, inner).variance[0]!) : 0) || 1, p = this.progress, s = this.switchAt;
    if (p < s) return { kind: 'dte', stage: 1, width: 3 - (2 * p) / s, t: 1, k: 1, sigma };
    const t = this.tMax ** ((p - s) / (1 - s));
    return { kind: 'dte', stage: 2, width: 1, t, k: Math.max(1 / t, 1), sigma };
  }
  config(): QuantizerConfig {
    return { name: this.name, tMax: this.tMax, switchAt: this.switchAt };
  }
}

/**
 * Per-output-channel mean and standard deviation of w along axis 0, as stop-gradient constants
 * shaped [outC, 1, ...].
 */
function channelMoments(w: Tensor): { mean: Tensor; std: Tensor } {
  const c = w.shape[0]!, inner = w.size / c;
  const { mean, variance } = moments(w, 1, c, inner);
  // The unbiased standard deviation (n − 1).
  const std = Float64Array.from(variance, (v) => Math.sqrt((v * inner) / Math.max(1, inner - 1)) || 1);
  const shape = w.shape.map((d, i) => (i === 0 ? d : 1));
  return { mean: fromValues(mean, shape, w.dtype), std: fromValues(std, shape, w.dtype) };
}

/**
 * IR-Net Libra-PB weights: per output filter, balance and standardize (ŵ = (w − mean)/std, mean
 * and std stop-gradient), binarize with the EDE surrogate, scale by 2^round(log2(mean|ŵ|)) (a
 * shift at inference, no gradient). Forward s_c·sign(ŵ); backward s_c·k·t·(1 − tanh²(t·ŵ))/std_c.
 * Deploys as the signs of w − mean (packed) with the scale s_c per channel.
 */
export class IrNetWeight extends EdeSign {
  override readonly name = 'irnet_weight';
  /**
   * ŵ (differentiable when grad mode is on), the per-channel power-of-two scale and std (1/std is
   * pseudoGradient's chain-rule factor; the forward needs no 1/std), from one pass of per-filter
   * statistics.
   */
  private parts(w: Tensor): { standardized: Tensor; scale: Tensor; std: Tensor } {
    const { mean, std } = noGrad(() => channelMoments(w));
    const centred = sub(w, mean), standardized = div(centred, std);
    return noGrad(() => {
      const a = channelMeanAbs(standardized, 0);
      const scale = fromValues(Array.from(a.values(), (m) => 2 ** Math.round(Math.log2(m || 1))), a.shape, w.dtype);
      for (const t of [a, mean, centred]) t.dispose();
      return { standardized, scale, std };
    });
  }
  override forward(w: Tensor): Tensor {
    const { standardized, scale, std } = this.parts(w);
    const q = fakeQuant(standardized, this.attrs()), out = mul(q, scale);
    for (const t of [standardized, scale, std, q]) t.dispose();
    return out;
  }
  override pseudoGradient(w: Tensor): Tensor {
    return noGrad(() => {
      const { standardized, scale, std } = this.parts(w), invStd = div(onesLike(std), std);
      std.dispose();
      return mul(mul(fakeQuantGrad(standardized, null, this.attrs()), scale), invStd);
    });
  }
  override deployment(): QuantDeployment {
    return { values: 'sign', latent: (w) => this.parts(w).standardized, channelScale: (w) => this.parts(w).scale };
  }
}

/**
 * FDA-BNN sign: forward sign(x) (times alpha_c = mean|x| per output channel with `scaled`, for
 * weights); backward the derivative of the n-term Fourier series of sign,
 * (4ω/π)·Σ_{i<n} cos((2i+1)ωx) for |x| ≤ 1 (else 0), n growing linearly from nMin to nMax over
 * training. With `noise` (the paper's noise-adaptation module), the forward adds c(p)·e(x) to the
 * signs before scaling: e(x) = W₂·relu(W₁·x) + 0.1·sin(x), a learned bottleneck d → max(1, ⌊d/64⌋)
 * → d (no bias) applied per filter (weights, d = values per filter) or per position across
 * channels (activations, d = channels), c(p) = 0.05·(1 + cos(π·p)) decaying from 0.1 to 0 over
 * training, so the trained network (p = 1) is purely binary. pseudoGradient is the sign part; the
 * e(x) term is differentiated exactly by autograd.
 */
export class FourierSign extends Quantizer implements Scheduled {
  readonly name = 'fda_sign';
  readonly precision = 1;
  readonly omega: number;
  readonly nMin: number;
  readonly nMax: number;
  readonly scaled: boolean;
  readonly noise: boolean;
  progress = 0;
  /** Noise-adaptation weights W₁ [h, d] and W₂ [d, h] once bound, and what they are applied to. */
  private adapt: { w1: Tensor; w2: Tensor; role: 'kernel' | 'input' } | null = null;
  constructor(o: { omega?: number; nMin?: number; nMax?: number; scaled?: boolean; noise?: boolean } = {}) {
    super();
    this.omega = o.omega ?? 0.1;
    this.nMin = o.nMin ?? 9;
    this.nMax = o.nMax ?? 18;
    this.scaled = o.scaled ?? false;
    this.noise = o.noise ?? false;
  }
  override bind(role: 'kernel' | 'input', d: number, next: () => number): void {
    if (!this.noise || this.adapt) return;
    const h = Math.max(1, Math.floor(d / 64)), rng = new Rng(next(), 17);
    // PyTorch's Linear default: U(±1/√fan_in).
    const init = (rows: number, cols: number, name: string) => parameter(Array.from({ length: rows * cols }, () => (2 * rng.uniform() - 1) / Math.sqrt(cols)), [rows, cols], name);
    this.adapt = { w1: init(h, d, 'noise_w1'), w2: init(d, h, 'noise_w2'), role };
  }
  override parameters(): Tensor[] {
    return this.adapt ? [this.adapt.w1, this.adapt.w2] : [];
  }
  /** c(p), the weight of the noise-adaptation term (0 without `noise`). */
  noiseWeight(): number {
    return this.noise ? 0.05 * (1 + Math.cos(Math.PI * this.progress)) : 0;
  }
  /** e(x) = W₂·relu(W₁·x) + 0.1·sin(x) per filter (kernel) or per position across channels (input). */
  noiseTerm(x: Tensor): Tensor {
    const a = this.adapt;
    if (!a) throw new Error('fda_sign: the noise-adaptation module is not bound to a layer (build the quantizer through QuantConv2d/QuantLinear)');
    const [h, d] = a.w1.shape as [number, number];
    // Float64 checks run the same code on constant copies of the weights (as Pact's alpha).
    const [w1, w2] = [a.w1, a.w2].map((t) => (t.dtype === x.dtype ? t : fromValues(t.values(), t.shape, x.dtype))) as [Tensor, Tensor];
    const skip = mulScalar(sin(x), 0.1);
    let mlp: Tensor;
    if (a.role === 'input' && x.rank === 4) {
      // Per position across channels: 1x1 convolutions.
      mlp = conv2d(relu(conv2d(x, reshape(w1, [h, d, 1, 1]))), reshape(w2, [d, h, 1, 1]));
    } else {
      const rows = reshape(x, [x.shape[0]!, -1]);
      if (rows.shape[1] !== d) throw new ShapeError('fda_sign', `noise adaptation bound to ${d} values per ${a.role === 'kernel' ? 'filter' : 'position'}, got ${fmt(x.shape)}`);
      mlp = reshape(matmul(relu(matmul(rows, w1, { transB: true })), w2, { transB: true }), x.shape);
    }
    return add(mlp, skip);
  }
  setProgress(p: number): void {
    this.progress = Math.min(1, Math.max(0, p));
  }
  /** Fourier terms at the current progress. */
  terms(): number {
    return Math.round(this.nMin + (this.nMax - this.nMin) * this.progress);
  }
  private attrs(): FakeQuantAttrs {
    return { kind: 'fourier', omega: this.omega, terms: this.terms() };
  }
  forward(x: Tensor): Tensor {
    let q = fakeQuant(x, this.attrs());
    const c = this.adapt ? this.noiseWeight() : 0;
    if (c > 0) q = add(q, mulScalar(this.noiseTerm(x), c));
    if (!this.scaled) return q;
    const s = channelMeanAbs(x, 0), out = mul(q, s);
    s.dispose();
    q.dispose();
    return out;
  }
  pseudoGradient(x: Tensor): Tensor {
    return noGrad(() => {
      const d = fakeQuantGrad(x, null, this.attrs());
      return this.scaled ? mul(d, channelMeanAbs(x, 0)) : d;
    });
  }
  config(): QuantizerConfig {
    return { name: this.name, omega: this.omega, nMin: this.nMin, nMax: this.nMax, scaled: this.scaled, noise: this.noise };
  }
  override deployment(): QuantDeployment {
    return this.scaled ? { values: 'sign', channelScale: (w) => channelMeanAbs(w, 0) } : { values: 'sign' };
  }
}

/**
 * Nested-precision weights (vertical-layered representation, Wu et al. TPAMI 2023): one 8-bit
 * code per weight, q8 = clamp(round(w / s_c), −128, 127) with the per-output-channel step
 * s_c = clip·rms(w_c)/128 (stop-gradient; rms over the channel's weights), from which every
 * width b in 2..8 is read by dropping 8 − b low bits (step s_c·2^(8−b); see nestedCode). `bits`
 * is the width the forward pass reads now (setNestedBits); once-QAT trains the shared latent
 * weights through several widths at once (onceQatLoss). Backward: g·1[|w / s_c| ≤ 128].
 *
 * @example
 * const layer = new QuantLinear(784, 10, { kernelQuantizer: { name: 'nested', clip: 2.5 } });
 */
export class NestedWeight extends Quantizer {
  readonly name = 'nested';
  bits: number;
  readonly clip: number;
  constructor(o: { bits?: number; clip?: number } = {}) {
    super();
    this.bits = checkNestedBits(o.bits ?? 8, 'nested');
    this.clip = o.clip ?? 2.5;
    if (!(this.clip > 0)) throw new RangeError(`nested: clip must be positive, got ${o.clip}`);
  }
  get precision(): number {
    return this.bits;
  }
  /** s_c per output channel (axis 0), shaped [outC, 1, ...]. */
  step(w: Tensor): Tensor {
    const v = w.values() as FloatArray, c = w.shape[0]!, inner = v.length / c, out = new Float64Array(c);
    for (let o = 0; o < c; o++) {
      let s2 = 0;
      for (let i = o * inner; i < (o + 1) * inner; i++) s2 += v[i]! * v[i]!;
      out[o] = (this.clip * Math.sqrt(s2 / inner)) / 128 || 1;
    }
    return fromValues(out, w.shape.map((d, i) => (i === 0 ? d : 1)), w.dtype);
  }
  private attrs(): FakeQuantAttrs {
    return { kind: 'nested', drop: 8 - this.bits };
  }
  forward(w: Tensor): Tensor {
    const s = noGrad(() => this.step(w));
    const u = div(w, s), codes = fakeQuant(u, this.attrs()), out = mul(codes, s);
    [s, u, codes].forEach((t) => t.dispose());
    return out;
  }
  pseudoGradient(w: Tensor): Tensor {
    return noGrad(() => fakeQuantGrad(div(w, this.step(w)), null, this.attrs()));
  }
  config(): QuantizerConfig {
    return { name: this.name, bits: this.bits, clip: this.clip };
  }
  override deployment(): QuantDeployment {
    return { values: 'nested', channelScale: (w) => this.step(w) };
  }
}

/**
 * SmartDeal weights (smartdeal.ts): forward Ce·B, the factors of the latent weight W [outC, ...]
 * (rows flattened) by alternating projection — a float basis times a vector-wise sparse matrix of
 * power-of-two coefficients; backward straight through (g), so training (SmartDeal QAT) moves the
 * latent weights the factors are recomputed from, and a trained float model is decomposed by
 * loading its weights (convert --quant smartdeal on a float checkpoint).
 *
 * @example
 * const layer = new QuantLinear(400, 120, { kernelQuantizer: { name: 'smartdeal', segment: 4, rank: 4, sparsity: 0.5 } });
 */
export class SmartDealWeight extends Quantizer {
  readonly name = 'smartdeal';
  /** Bits of one stored coefficient code. */
  readonly precision = 4;
  readonly options: Required<SmartDealOptions>;
  constructor(o: SmartDealOptions = {}) {
    super();
    this.options = smartdealOptions(o);
  }
  factors(w: Tensor): SmartDealFactors {
    const outC = w.shape[0]!;
    return decompose(w.values() as FloatArray, outC, w.size / outC, this.options);
  }
  forward(w: Tensor): Tensor {
    // Ce·B + (W − W): exactly the reconstruction, with gradient 1 to W.
    const sd = fromValues(reconstruct(this.factors(w)), w.shape, w.dtype), frozen = fromValues(w.values(), w.shape, w.dtype);
    const zero = sub(w, frozen), out = add(sd, zero);
    [sd, frozen, zero].forEach((t) => t.dispose());
    return out;
  }
  pseudoGradient(w: Tensor): Tensor {
    return noGrad(() => onesLike(w));
  }
  config(): QuantizerConfig {
    return { name: this.name, ...this.options };
  }
  override deployment(): QuantDeployment {
    const dims = (w: Tensor): [number, number] => [w.shape[0]!, w.size / w.shape[0]!];
    const { segment, rank } = this.options;
    return {
      values: 'smartdeal',
      factors: (w) => this.factors(w),
      bitsPerWeight: (w) => storageBits(...dims(w), this.options) / w.size,
      macsPerOutput: (w) => {
        const [outC, K] = dims(w);
        return (rank * (K + keptRows(outC, K, this.options))) / outC;
      },
      sparsity: (w) => {
        const [outC, K] = dims(w), segments = outC * Math.ceil(K / segment);
        return 1 - keptRows(outC, K, this.options) / segments;
      },
    };
  }
}

/** The scalar parameter `p` in x's dtype (float64 gradient checks run the same code). */
function scalarFor(p: Tensor, x: Tensor): Tensor {
  return x.dtype === p.dtype ? p : fromValues(p.values(), [1], x.dtype);
}

/** max|x| over the tensor. */
function maxAbs(x: Tensor): number {
  const v = x.values() as FloatArray;
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]!));
  return m;
}

/**
 * TTQ (trained ternary quantization, Zhu et al. 2017): +W_p where w ≥ Δ, −W_n where w ≤ −Δ, else 0;
 * Δ = t·max|w| (t = 0.05, stop-gradient), W_p and W_n learned per layer (initialised from the first
 * weights seen: the mean of w over w ≥ Δ and of |w| over w ≤ −Δ). Backward: latent weights get
 * g·W_p / g / g·W_n in the positive / zero / negative region; ∂L/∂W_p = Σ_{w ≥ Δ} g and
 * ∂L/∂W_n = −Σ_{w ≤ −Δ} g (the chain rule of −W_n). Deploys as ternary codes with the positive
 * scale W_p and negative codes weighing −W_n/W_p.
 */
export class Ttq extends Quantizer {
  readonly name = 'ttq';
  readonly precision = 2;
  readonly thresholdFactor: number;
  readonly wp: Tensor;
  readonly wn: Tensor;
  private readonly createdVersion: number;
  constructor(o: { thresholdFactor?: number; wp?: number; wn?: number } = {}) {
    super();
    this.thresholdFactor = o.thresholdFactor ?? 0.05;
    if (!(this.thresholdFactor >= 0 && this.thresholdFactor < 1)) throw new RangeError(`ttq: thresholdFactor must be in [0, 1), got ${o.thresholdFactor}`);
    this.wp = parameter([o.wp ?? 1], [1], 'wp');
    this.wn = parameter([o.wn ?? 1], [1], 'wn');
    this.createdVersion = o.wp === undefined && o.wn === undefined ? this.wp.storage.version + this.wn.storage.version : -1;
  }
  /** False until the scales were set (option, first forward, optimizer or a loaded state). */
  get initialized(): boolean {
    return this.wp.storage.version + this.wn.storage.version !== this.createdVersion;
  }
  /** Δ = t·max|w|. */
  threshold(x: Tensor): number {
    return this.thresholdFactor * maxAbs(x);
  }
  private scales(x: Tensor): [Tensor, Tensor] {
    if (!this.initialized) {
      const delta = this.threshold(x), v = x.values() as FloatArray;
      let sp = 0, np = 0, sn = 0, nn = 0;
      for (let i = 0; i < v.length; i++) {
        if (v[i]! >= delta) (sp += v[i]!), np++;
        else if (v[i]! <= -delta) (sn -= v[i]!), nn++;
      }
      this.wp.data().set([np ? sp / np : 1]);
      this.wn.data().set([nn ? sn / nn : 1]);
      this.wp.bumpVersion();
      this.wn.bumpVersion();
    }
    return [scalarFor(this.wp, x), scalarFor(this.wn, x)];
  }
  private attrs(x: Tensor): [FakeQuantAttrs, FakeQuantAttrs] {
    const threshold = this.threshold(x);
    return [{ kind: 'ttq_pos', threshold }, { kind: 'ttq_neg', threshold }];
  }
  forward(x: Tensor): Tensor {
    const [pos, neg] = this.attrs(x), [wp, wn] = this.scales(x);
    const a = fakeQuant(x, pos, wp), b = fakeQuant(x, neg, wn), out = add(a, b);
    a.dispose();
    b.dispose();
    return out;
  }
  pseudoGradient(x: Tensor): Tensor {
    return noGrad(() => {
      const [pos, neg] = this.attrs(x), [wp, wn] = this.scales(x);
      return add(fakeQuantGrad(x, wp, pos), fakeQuantGrad(x, wn, neg));
    });
  }
  override parameters(): Tensor[] {
    return [this.wp, this.wn];
  }
  config(): QuantizerConfig {
    return { name: this.name, thresholdFactor: this.thresholdFactor, wp: this.initialized ? this.wp.item() : undefined, wn: this.initialized ? this.wn.item() : undefined };
  }
  override deployment(): QuantDeployment {
    return {
      values: 'ternary',
      threshold: (w) => this.threshold(w),
      channelScale: (w) => fromValues(new Array<number>(w.shape[0]!).fill(this.wp.item()), w.shape.map((d, i) => (i === 0 ? d : 1)), w.dtype),
      negativeRatio: () => this.wn.item() / this.wp.item(),
    };
  }
}

/**
 * The pruning threshold Δ for a `sparsity` fraction of |x|: the floor(sparsity·n)-th smallest
 * magnitude (sorted ascending, 0-based); survivors are |x| ≥ Δ (ties at Δ survive). 0 keeps
 * everything; exact zeros are always pruned when sparsity > 0. `near`: a guess of Δ (kthSmallest).
 */
export function magnitudeThreshold(values: ArrayLike<number>, sparsity: number, near?: number): number {
  return countThreshold(values, Math.floor(sparsity * values.length), near);
}

/** The threshold that prunes the `cut` smallest magnitudes (as magnitudeThreshold, by count). */
export function countThreshold(values: ArrayLike<number>, cut: number, near?: number): number {
  const n = values.length;
  if (cut <= 0 || n === 0) return 0;
  if (cut >= n) return Infinity;
  // |float32| is a float32: a float32 copy selects the same value with half the memory traffic.
  const abs = values instanceof Float32Array ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) abs[i] = Math.abs(values[i]!);
  return kthSmallest(abs, cut, near) || Number.MIN_VALUE;
}

/**
 * The value at index k of `v` sorted ascending as a typed array's sort sorts (NaN last;
 * undefined past the end), found by quickselect in O(n) (v is reordered): a per-step threshold
 * of pruning, pruned ternary and SBNN without a per-step sort. `near`, a guess of the answer (last
 * step's threshold), only saves work: one pass counts the values below and within ±1/16 of it, and
 * when index k falls in that band only the band is searched; the answer is the same.
 *
 * @example
 * kthSmallest(Float64Array.of(3, NaN, 1, 2), 1); // 2
 */
export function kthSmallest(v: Float64Array | Float32Array, k: number, near?: number): number | undefined {
  if (!(k >= 0 && k < v.length)) return undefined;
  let n = 0;
  for (let i = 0; i < v.length; i++) if (v[i] === v[i]) v[n++] = v[i]!; // NaN sorts last: drop them
  if (k >= n) return NaN;
  if (near !== undefined && near > 0 && near < Infinity) {
    const lo = near * (1 - 1 / 16), hi = near * (1 + 1 / 16);
    // Branch-free passes (which side of the band a value falls is data-dependent).
    let below = 0, upTo = 0;
    for (let i = 0; i < n; i++) {
      const x = v[i]!;
      below += +(x < lo);
      upTo += +(x <= hi);
    }
    if (k >= below && k < upTo) {
      // The band to the front (its order does not matter): the answer is its (k − below)-th smallest.
      for (let i = 0, j = 0; i < n; i++) {
        const x = v[i]!;
        v[i] = v[j]!;
        v[j] = x;
        j += +(x >= lo) & +(x <= hi);
      }
      return quickselect(v, 0, upTo - below - 1, k - below);
    }
  }
  return quickselect(v, 0, n - 1, k);
}

/** The k-th smallest of v[lo..hi] (no NaN), v[lo..hi] reordered. */
function quickselect(v: Float64Array | Float32Array, lo: number, hi: number, k: number): number {
  while (hi > lo) {
    // Hoare partition around the median of three.
    const a = v[lo]!, b = v[(lo + hi) >>> 1]!, c = v[hi]!;
    const pivot = a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
    let i = lo, j = hi;
    while (i <= j) {
      while (v[i]! < pivot) i++;
      while (v[j]! > pivot) j--;
      if (i <= j) {
        const t = v[i]!;
        v[i++] = v[j]!;
        v[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return pivot;
  }
  return v[k]!;
}

/**
 * Zhu & Gupta's cubic ramp: the fraction of a final sparsity reached at progress t of the ramp,
 * 1 − (1 − t)³ for t clamped to [0, 1] (pruning, pternary and SBNN schedules share it).
 *
 * @example
 * cubicRamp(0.5); // 0.875: half-way through the ramp, 87.5 % of the final sparsity
 */
export function cubicRamp(t: number): number {
  return 1 - (1 - Math.min(1, Math.max(0, t))) ** 3;
}

/**
 * Pruning ternary quantization (after Liu et al. 2021; mechanics are our reading): per layer, the
 * `sparsity` fraction of smallest |w| is pruned (Δ = that magnitude quantile, stop-gradient); each
 * output filter's survivors become their signs times alpha_c = ||w_c ⊙ m_c||₂/√nnz_c, i.e. the
 * ternary orthonormal basis ±1/√nnz of the L2-normalized pruned filter scaled back to its norm.
 * Refined straight-through gradient: g·alpha_c on survivors, g·alpha_c·|w|/Δ on pruned weights.
 * After each step the pruned latent weights decay by (1 − decay) (the weight-decay term that
 * drives them to 0, shrinking the latent-to-ternary discrepancy). With `pruneUntil` u > 0 the
 * pruning ratio grows over training progress p as s(p) = sparsity·(1 − (1 − p/u)³) (Zhu & Gupta's
 * cubic schedule) and holds `sparsity` from u on, and the decay acts only from u on (PTQ
 * fine-tunes a trained model, whose magnitude mask means something; from random weights, decaying
 * the latents the first mask prunes freezes that mask); u = 0 prunes `sparsity` and decays from
 * the first step.
 */
export class PrunedTernary extends Quantizer implements Scheduled {
  readonly name: string = 'pruned_tern';
  readonly precision = 2;
  readonly sparsity: number;
  readonly decay: number;
  readonly pruneUntil: number;
  /** Training progress in [0, 1] (withConstraints sets it while training; 1: trained). */
  progress = 1;
  constructor(o: { sparsity?: number; decay?: number; pruneUntil?: number } = {}) {
    super();
    this.sparsity = o.sparsity ?? 0.5;
    this.decay = o.decay ?? 1e-3;
    this.pruneUntil = o.pruneUntil ?? 0;
    if (!(this.sparsity >= 0 && this.sparsity < 1)) throw new RangeError(`${this.name}: sparsity must be in [0, 1), got ${o.sparsity}`);
    if (!(this.decay >= 0 && this.decay < 1)) throw new RangeError(`${this.name}: decay must be in [0, 1), got ${o.decay}`);
    if (!(this.pruneUntil >= 0 && this.pruneUntil <= 1)) throw new RangeError(`${this.name}: pruneUntil must be in [0, 1], got ${o.pruneUntil}`);
  }
  setProgress(p: number): void {
    this.progress = Math.min(1, Math.max(0, p));
  }
  /** The pruning ratio in force at the current progress. */
  currentSparsity(): number {
    return this.progress >= this.pruneUntil ? this.sparsity : this.sparsity * cubicRamp(this.progress / this.pruneUntil);
  }
  /** The last threshold computed, by tensor, storage version and sparsity (forward, backward and scale share it). */
  private last: { x: Tensor; version: number; sparsity: number; delta: number } | null = null;
  /** Δ: the currentSparsity() quantile of |w| over the layer. */
  threshold(x: Tensor): number {
    const sparsity = this.currentSparsity(), l = this.last;
    if (l && l.x === x && l.version === x.storage.version && l.sparsity === sparsity) return l.delta;
    // Last step's Δ as the selection's guess (the weights move little per step).
    const delta = magnitudeThreshold(readable(x), sparsity, l?.delta);
    this.last = { x, version: x.storage.version, sparsity, delta };
    return delta;
  }
  /** alpha_c = RMS of the surviving weights of each output filter (0 for a fully pruned one). */
  scale(x: Tensor): Tensor {
    const delta = this.threshold(x), v = readable(x), c = x.shape[0]!, inner = v.length / c;
    const out = new Float64Array(c);
    for (let o = 0; o < c; o++) {
      // Branch-free (half the weights survive, in no order): a pruned weight adds x²·0 = +0, which
      // leaves the sum as it is unless x is NaN or ±∞; then the sum is not finite and is redone.
      let s = 0, n = 0;
      for (let i = o * inner; i < (o + 1) * inner; i++) {
        const x = v[i]!, keep = +(Math.abs(x) >= delta);
        s += x * x * keep;
        n += keep;
      }
      if (!(s < Infinity)) {
        s = 0;
        for (let i = o * inner; i < (o + 1) * inner; i++) if (Math.abs(v[i]!) >= delta) s += v[i]! * v[i]!;
      }
      out[o] = n ? Math.sqrt(s / n) : 0;
    }
    return fromValues(out, x.shape.map((d, i) => (i === 0 ? d : 1)), x.dtype);
  }
  protected attrs(x: Tensor): FakeQuantAttrs {
    return { kind: 'pruned_tern', threshold: this.threshold(x) };
  }
  forward(x: Tensor): Tensor {
    const t = fakeQuant(x, this.attrs(x)), s = this.scale(x), out = mul(t, s);
    t.dispose();
    s.dispose();
    return out;
  }
  pseudoGradient(x: Tensor): Tensor {
    return noGrad(() => mul(fakeQuantGrad(x, null, this.attrs(x)), this.scale(x)));
  }
  override afterStep(w: Tensor): void {
    if (!this.decay || this.progress < this.pruneUntil) return;
    const delta = this.threshold(w), d = w.data() as FloatArray, f = 1 - this.decay;
    for (let i = 0; i < d.length; i++) if (Math.abs(d[i]!) < delta) d[i] = d[i]! * f;
    w.bumpVersion();
    // Only magnitudes below Δ shrank: Δ is still the same order statistic of the new weights.
    if (this.last?.x === w) this.last.version = w.storage.version;
  }
  config(): QuantizerConfig {
    return { name: this.name, sparsity: this.sparsity, decay: this.decay, pruneUntil: this.pruneUntil };
  }
  override deployment(): QuantDeployment {
    return { values: 'ternary', threshold: (w) => this.threshold(w), channelScale: (w) => this.scale(w) };
  }
}

/**
 * Hyperspherical quantization (after Liu et al. 2022; mechanics are our reading): each latent
 * filter lives on a sphere (after every step it is projected back to the radius it had at the
 * first step: hyperspherical learning); pruning grows gradually, s(p) = sparsity·(1 − (1 −
 * min(1, p/pruneUntil))³) over training progress p; when s reaches its final value the surviving
 * weights are re-initialised to their ternary direction on the sphere (r_c·t_c/√nnz_c), so float
 * and ternary weights start the last phase at cosine distance 0. Forward as pruned ternary
 * (alpha_c = RMS of survivors); backward the plain straight-through g·alpha_c. The weights are
 * ternary from the first step: training them as pruned float weights until the re-initialisation
 * and ternary only after it (the spec's normalize → prune → re-init → ternarize read as phases)
 * scored 0.8 pt lower on a validation split with LeNet-5's 10-epoch schedule (BENCHMARKS.md).
 */
export class Hyperspherical extends PrunedTernary {
  override readonly name = 'hq_tern';
  private radii: Float64Array | null = null;
  private lastStep: number | null = null;
  constructor(o: { sparsity?: number; pruneUntil?: number } = {}) {
    if (!((o.pruneUntil ?? 0.5) > 0)) throw new RangeError(`hq_tern: pruneUntil must be in (0, 1], got ${o.pruneUntil}`);
    super({ sparsity: o.sparsity, decay: 0, pruneUntil: o.pruneUntil ?? 0.5 });
  }
  protected override attrs(x: Tensor): FakeQuantAttrs {
    return { kind: 'tern', threshold: this.threshold(x), clip: null };
  }
  override afterStep(w: Tensor): void {
    const d = w.data() as FloatArray, c = w.shape[0]!, inner = d.length / c;
    const norm = (o: number) => {
      let s = 0;
      for (let i = o * inner; i < (o + 1) * inner; i++) s += d[i]! * d[i]!;
      return Math.sqrt(s);
    };
    this.radii ??= Float64Array.from({ length: c }, (_, o) => norm(o));
    const crossed = this.lastStep !== null && this.lastStep < this.pruneUntil && this.progress >= this.pruneUntil;
    this.lastStep = this.progress;
    const delta = crossed ? this.threshold(w) : 0;
    for (let o = 0; o < c; o++) {
      const a = o * inner, b = a + inner;
      if (crossed) {
        let nnz = 0;
        for (let i = a; i < b; i++) if (Math.abs(d[i]!) >= delta) nnz++;
        for (let i = a; i < b; i++) d[i] = Math.abs(d[i]!) >= delta ? (d[i]! >= 0 ? 1 : -1) / Math.sqrt(nnz) : 0;
      }
      const r = norm(o), f = r > 0 ? this.radii[o]! / r : 1;
      for (let i = a; i < b; i++) d[i] = d[i]! * f;
    }
    w.bumpVersion();
  }
  override config(): QuantizerConfig {
    return { name: this.name, sparsity: this.sparsity, pruneUntil: this.pruneUntil };
  }
}

/**
 * SBNN sparse binary weights (after Schiavone & Zuluaga, spec §4.7) in the paper's {α, β} domain:
 * w_b = τ·sign(w − θ) + φ with τ and φ learned per layer (α = φ − τ for code 0, β = φ + τ for code
 * 1). A fraction `sparsity` of each layer's weights takes code 0 and only the minority, the largest
 * latent weights, takes code 1: the split is the layer's s-quantile θ of the latent weights, code =
 * 1[w ≥ θ]; s follows training progress p from 0.5 (a balanced binary layer) to `sparsity` along
 * s(p) = 0.5 + (sparsity − 0.5)·(1 − (1 − min(1, p/rampUntil))³), so the code is as sparse as asked
 * when the ramp ends (the paper pushes the fraction of ones below its target with an adaptive
 * penalty; the quantile reaches it exactly). While the split ramps, τ and φ follow the
 * least-squares fit of the latent weights to the current code (α = mean of the weights below θ,
 * β = mean of those at or above it: balanced ±τ at 50 %, the majority code near 0 at 90 %); from
 * the end of the ramp on (at sparsity 0.5: from the start) they are learned. Backward: latent weights
 * g·τ·1[|w − θ| ≤ clipValue]; ∂L/∂τ = Σ g·sign(w − θ); ∂L/∂φ = Σ g. Deployed as packed code bits
 * (code 0 = bit 1) with the levels [α, β]: the runtimes compute α·Σa + (β − α)·(a·w01) from the
 * XOR-popcount accumulator and the window sum of the packed activations; the file stores the
 * sparse code compactly (deployed-format: gaps between minority bits, Rice-coded).
 *
 * @example
 * const layer = new QuantLinear(400, 120, { inputQuantizer: 'ede_sign', kernelQuantizer: { name: 'sbnn_weight', sparsity: 0.9 }, kernelConstraint: 'weight_clip' });
 */
export class SparseBinaryWeight extends Quantizer implements Scheduled {
  readonly name = 'sbnn_weight';
  readonly precision = 1;
  readonly sparsity: number;
  readonly rampUntil: number;
  readonly clipValue: number;
  /** Learned half-distance τ and midpoint φ of the two weight values (per layer). */
  readonly tau: Tensor;
  readonly phi: Tensor;
  private readonly createdVersion: number;
  progress = 0;
  constructor(o: { sparsity?: number; rampUntil?: number; clipValue?: number; tau?: number; phi?: number } = {}) {
    super();
    this.sparsity = o.sparsity ?? 0.9;
    this.rampUntil = o.rampUntil ?? 0.5;
    this.clipValue = o.clipValue ?? 1;
    if (!(this.sparsity >= 0.5 && this.sparsity < 1)) throw new RangeError(`sbnn_weight: sparsity must be in [0.5, 1) (the fraction of weights at the majority code), got ${o.sparsity}`);
    if (!(this.rampUntil > 0 && this.rampUntil <= 1)) throw new RangeError(`sbnn_weight: rampUntil must be in (0, 1], got ${o.rampUntil}`);
    for (const key of ['tau', 'phi'] as const) if (o[key] !== undefined && !Number.isFinite(o[key])) throw new RangeError(`sbnn_weight: ${key} must be a finite number, got ${o[key]}`);
    this.tau = parameter([o.tau ?? 1], [1], 'tau');
    this.phi = parameter([o.phi ?? 0], [1], 'phi');
    this.createdVersion = o.tau === undefined && o.phi === undefined ? this.tau.storage.version + this.phi.storage.version : -1;
  }
  setProgress(p: number): void {
    this.progress = Math.min(1, Math.max(0, p));
  }
  /** The fraction of weights at code 0 (α) the forward pass uses now. */
  currentSparsity(): number {
    return 0.5 + (this.sparsity - 0.5) * cubicRamp(this.progress / this.rampUntil);
  }
  /** False until τ and φ were set (options, first forward, optimizer or a loaded state). */
  get initialized(): boolean {
    return this.tau.storage.version + this.phi.storage.version !== this.createdVersion;
  }
  /** The last θ computed, by tensor, storage version and sparsity (forward and pseudoGradient share it). */
  private last: { w: Tensor; version: number; sparsity: number; theta: number } | null = null;
  /** The s-quantile of the latent weights: those at and above it (a fraction 1 − s) take code 1. */
  private quantile(w: Tensor, s: number): number {
    const v = w.values() as FloatArray; // a copy: quickselect reorders it
    return kthSmallest(v, Math.min(v.length - 1, Math.floor(s * v.length))) ?? 0;
  }
  /** θ at the current sparsity. */
  threshold(w: Tensor): number {
    const sparsity = this.currentSparsity(), l = this.last;
    if (l && l.w === w && l.version === w.storage.version && l.sparsity === sparsity) return l.theta;
    const theta = this.quantile(w, sparsity);
    this.last = { w, version: w.storage.version, sparsity, theta };
    return theta;
  }
  /** Whether the code split is still moving (progress before the end of a ramp from 0.5 to a higher sparsity). */
  private get ramping(): boolean {
    return this.sparsity > 0.5 && this.progress < this.rampUntil;
  }
  /**
   * τ and φ as [1] tensors of w's dtype. While the split ramps, and at the first call, they are
   * set to the least-squares fit of the latent weights at the current code split (α = mean of the
   * weights below θ, β = mean of the rest: the closed-form mapping into the domain); from then on
   * they are learned (at sparsity 0.5 nothing ramps: learned from the first step).
   */
  private levels(w: Tensor): [Tensor, Tensor] {
    if (!this.initialized || this.ramping) {
      const theta = this.threshold(w), v = readable(w);
      let s0 = 0, n0 = 0, s1 = 0, n1 = 0;
      for (let i = 0; i < v.length; i++) {
        if (v[i]! >= theta) (s1 += v[i]!), n1++;
        else (s0 += v[i]!), n0++;
      }
      const a = n0 ? s0 / n0 : 0, b = n1 ? s1 / n1 : 0;
      this.tau.data().set([(b - a) / 2 || 1]);
      this.phi.data().set([(a + b) / 2]);
      this.tau.bumpVersion();
      this.phi.bumpVersion();
    }
    return [scalarFor(this.tau, w), scalarFor(this.phi, w)];
  }
  /** w − θ (the code is 1 where it is ≥ 0). */
  private shifted(w: Tensor): Tensor {
    return addScalar(w, -this.threshold(w));
  }
  forward(w: Tensor): Tensor {
    const [tau, phi] = this.levels(w);
    return sbnnWeight(w, tau, phi, { theta: this.threshold(w), clip: this.clipValue });
  }
  pseudoGradient(w: Tensor): Tensor {
    return noGrad(() => mul(fakeQuantGrad(this.shifted(w), null, { kind: 'sign', clip: this.clipValue }), this.levels(w)[0]));
  }
  override parameters(): Tensor[] {
    return [this.tau, this.phi];
  }
  config(): QuantizerConfig {
    const learned = this.initialized ? { tau: this.tau.item(), phi: this.phi.item() } : {};
    return { name: this.name, sparsity: this.sparsity, rampUntil: this.rampUntil, clipValue: this.clipValue, ...learned };
  }
  override deployment(): QuantDeployment {
    return {
      values: 'sign',
      latent: (w) => noGrad(() => this.shifted(w)),
      levels: (w) => {
        // The values the float32 forward computes with (sbnnWeight stores φ ± τ in w's dtype).
        const [tau, phi] = noGrad(() => this.levels(w)).map((t) => t.item()), r = w.dtype === 'float32' ? Math.fround : (v: number) => v;
        return [r(phi! - tau!), r(phi! + tau!)];
      },
      // The Rice-coded size of the filters' sign rows (what the file stores where it is smaller than 1 bit).
      bitsPerWeight: (w) => {
        const rows = w.shape[0]!, k = w.size / rows;
        const coded = riceEncodeBits(packSignRows(noGrad(() => this.shifted(w)).values(), rows, k), rows, k);
        return coded ? (32 * coded.stream.length) / w.size : 1;
      },
    };
  }
}

const constructors: Record<string, (o: any) => Quantizer> = {
  smartdeal: (o) => new SmartDealWeight(o),
  nested: (o) => new NestedWeight(o),
  ede_sign: (o) => new EdeSign(o),
  irnet_weight: (o) => new IrNetWeight(o),
  fda_sign: (o) => new FourierSign(o),
  dte_sign: (o) => new DteSign(o),
  ste_sign: (o) => new SteSign(o),
  approx_sign: () => new ApproxSign(),
  swish_sign: (o) => new SwishSign(o),
  magnitude_aware_sign: (o) => new MagnitudeAwareSign(o),
  ste_heaviside: (o) => new SteHeaviside(o),
  ste_tern: (o) => new SteTern(o),
  dorefa: (o) => new DoReFa(o),
  pact: (o) => new Pact(o),
  lsq: (o) => new Lsq(o),
  ttq: (o) => new Ttq(o),
  pruned_tern: (o) => new PrunedTernary(o),
  hq_tern: (o) => new Hyperspherical(o),
  sbnn_weight: (o) => new SparseBinaryWeight(o),
};

/** Every quantizer alias. */
export const quantizerNames = Object.keys(constructors);

/** A quantizer by alias, config object, or the instance itself; `undefined`/`null` stay absent. */
export function quantizer(spec: string | QuantizerConfig | Quantizer): Quantizer;
export function quantizer(spec: string | QuantizerConfig | Quantizer | null | undefined): Quantizer | null;
export function quantizer(spec: string | QuantizerConfig | Quantizer | null | undefined): Quantizer | null {
  if (spec === null || spec === undefined) return null;
  if (spec instanceof Quantizer) return spec;
  const { name, ...options } = typeof spec === 'string' ? { name: spec } : spec;
  const make = constructors[name];
  if (!make) throw new Error(`unknown quantizer '${name}' (known: ${quantizerNames.join(', ')})`);
  return make(options);
}

/**
 * Quantized layers (Larq-style): the float layer plus an input quantizer, a kernel quantizer and a
 * kernel constraint on the latent weights. Without quantizers a layer computes exactly what its
 * float parent does (same ops, same order, bit-identical).
 *
 * @example
 * const layer = new QuantConv2d(32, 64, 3, {
 *   inputQuantizer: 'ste_sign', kernelQuantizer: 'ste_sign', kernelConstraint: 'weight_clip', bias: false,
 * });
 * // after every optimizer step:
 * constrainWeights(model);
 */
import type { FloatArray } from '../core/dtype.js';
import { Tensor } from '../core/tensor.js';
import { add, conv2d, matmul, maxPool2d, type Conv2dOptions } from '../ops/index.js';
import { Conv2d, Linear, type InitOptions } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Rng } from '../util/rng.js';
import { checkNestedBits, isScheduled, NestedWeight, quantizer, Quantizer, type QuantizerConfig } from './quantizers.js';

/** A constraint applied in place to latent weights after each optimizer step. */
export interface KernelConstraint {
  readonly name: string;
  apply(w: Tensor): void;
  config(): QuantizerConfig;
}

/** Clips latent weights to [−clipValue, clipValue] (BinaryNet): keeps binary weights able to flip. */
export class WeightClip implements KernelConstraint {
  readonly name = 'weight_clip';
  constructor(readonly clipValue = 1) {
    if (!(clipValue > 0)) throw new RangeError(`weight_clip: clipValue must be positive, got ${clipValue}`);
  }
  apply(w: Tensor): void {
    const d = w.data() as FloatArray;
    const c = this.clipValue;
    for (let i = 0; i < d.length; i++) d[i] = Math.min(c, Math.max(-c, d[i]!));
    w.bumpVersion();
  }
  config(): QuantizerConfig {
    return { name: this.name, clipValue: this.clipValue };
  }
}

function constraint(spec: string | QuantizerConfig | KernelConstraint | null | undefined): KernelConstraint | null {
  if (spec === null || spec === undefined) return null;
  if (spec instanceof WeightClip) return spec;
  if (typeof spec === 'object' && typeof spec.apply === 'function') return spec as KernelConstraint;
  const { name, clipValue } = typeof spec === 'string' ? { name: spec, clipValue: undefined } : (spec as { name: string; clipValue?: number });
  if (name !== 'weight_clip') throw new Error(`unknown kernel constraint '${name}' (known: weight_clip)`);
  return new WeightClip(clipValue ?? 1);
}

let warningHandler: (message: string) => void = (m) => console.warn(`slimgrad: ${m}`);

/** Replaces where quantization warnings go (default console.warn); returns the previous handler. */
export function setQuantWarningHandler(handler: (message: string) => void): (message: string) => void {
  const prev = warningHandler;
  warningHandler = handler;
  return prev;
}

export interface QuantOptions {
  /** Quantizes the layer input (e.g. 'ste_sign' for binary activations); absent: float input. */
  inputQuantizer?: string | QuantizerConfig | Quantizer | null;
  /** Quantizes the latent kernel in forward; absent: float kernel. */
  kernelQuantizer?: string | QuantizerConfig | Quantizer | null;
  /** Applied to the latent kernel by `constrainWeights` (e.g. 'weight_clip'). */
  kernelConstraint?: string | QuantizerConfig | KernelConstraint | null;
}

/** What summary and conversion need from a quantized layer. */
export interface QuantLayer {
  readonly inputQuantizer: Quantizer | null;
  readonly kernelQuantizer: Quantizer | null;
  readonly kernelConstraint: KernelConstraint | null;
  readonly weight: Tensor;
  readonly bias: Tensor | null;
}

/**
 * Shared setup: resolves the quantizers, binds them to the layer's shapes (`features`: values per
 * filter and per input position; Quantizer.bind), registers their learned parameters, warns on
 * unclipped binary kernels.
 */
function setupQuant(register: (name: string, t: Tensor) => void, o: QuantOptions & InitOptions, label: string, features: { kernel: number; input: number }) {
  const inputQuantizer = quantizer(o.inputQuantizer);
  const kernelQuantizer = quantizer(o.kernelQuantizer);
  const kernelConstraint = constraint(o.kernelConstraint);
  const rng = o.rng ?? new Rng(0, 17);
  const next = () => Math.floor(rng.uniform() * 2 ** 31);
  kernelQuantizer?.bind('kernel', features.kernel, next);
  inputQuantizer?.bind('input', features.input, next);
  inputQuantizer?.parameters().forEach((p, i) => register(`input_quantizer_${i}`, p));
  kernelQuantizer?.parameters().forEach((p, i) => register(`kernel_quantizer_${i}`, p));
  if (kernelQuantizer?.precision === 1 && !kernelConstraint) {
    warningHandler(`${label}: binary kernel quantizer '${kernelQuantizer.name}' without a kernelConstraint; latent weights grow without bound and stop flipping (pass kernelConstraint: 'weight_clip')`);
  }
  return { inputQuantizer, kernelQuantizer, kernelConstraint };
}

/** Runs `body` on the quantized input and kernel, disposing the quantized copies afterwards. */
function withQuantized(layer: QuantLayer, x: Tensor, body: (x: Tensor, w: Tensor) => Tensor): Tensor {
  const xq = layer.inputQuantizer ? layer.inputQuantizer.forward(x) : x;
  const wq = layer.kernelQuantizer ? layer.kernelQuantizer.forward(layer.weight) : layer.weight;
  const y = body(xq, wq);
  if (xq !== x) xq.dispose();
  if (wq !== layer.weight) wq.dispose();
  return y;
}

/** Linear with quantizer slots; y = q_in(x)·q_k(W)ᵀ + b. */
export class QuantLinear extends Linear implements QuantLayer {
  readonly inputQuantizer: Quantizer | null;
  readonly kernelQuantizer: Quantizer | null;
  readonly kernelConstraint: KernelConstraint | null;
  constructor(inFeatures: number, outFeatures: number, o: QuantOptions & InitOptions = {}) {
    super(inFeatures, outFeatures, o);
    ({ inputQuantizer: this.inputQuantizer, kernelQuantizer: this.kernelQuantizer, kernelConstraint: this.kernelConstraint } =
      setupQuant((n, t) => this.registerParameter(n, t), o, `QuantLinear(${inFeatures} -> ${outFeatures})`, { kernel: inFeatures, input: inFeatures }));
  }
  override forward(x: Tensor): Tensor {
    if (!this.inputQuantizer && !this.kernelQuantizer) return super.forward(x);
    return withQuantized(this, x, (xq, wq) => {
      const y = matmul(xq, wq, { transB: true });
      if (!this.bias) return y;
      const out = add(y, this.bias);
      y.dispose();
      return out;
    });
  }
}

/** Conv2d with quantizer slots. Zero padding pads the *quantized* input with 0 (not ±1). */
export class QuantConv2d extends Conv2d implements QuantLayer {
  readonly inputQuantizer: Quantizer | null;
  readonly kernelQuantizer: Quantizer | null;
  readonly kernelConstraint: KernelConstraint | null;
  constructor(inChannels: number, outChannels: number, kernel: number, o: Conv2dOptions & QuantOptions & InitOptions = {}) {
    const { inputQuantizer, kernelQuantizer, kernelConstraint, ...convOptions } = o;
    super(inChannels, outChannels, kernel, convOptions);
    ({ inputQuantizer: this.inputQuantizer, kernelQuantizer: this.kernelQuantizer, kernelConstraint: this.kernelConstraint } =
      setupQuant((n, t) => this.registerParameter(n, t), { inputQuantizer, kernelQuantizer, kernelConstraint, rng: o.rng }, `QuantConv2d(${inChannels} -> ${outChannels}, ${kernel}x${kernel})`,
        { kernel: this.weight.size / outChannels, input: inChannels }));
  }
  override forward(x: Tensor): Tensor {
    if (!this.inputQuantizer && !this.kernelQuantizer) return super.forward(x);
    return withQuantized(this, x, (xq, wq) => conv2d(xq, wq, this.bias, this.options));
  }
}

/** Max pooling with inspectable options (square window, stride = window), for conversion. */
export class MaxPool2dLayer extends Module {
  constructor(readonly kernel: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, { kernel: this.kernel });
  }
}

export function isQuantLayer(m: Module): m is Module & QuantLayer & (QuantLinear | QuantConv2d) {
  return m instanceof QuantLinear || m instanceof QuantConv2d;
}

/**
 * Applies every quantized layer's kernel constraint, then its kernel quantizer's latent-weight
 * maintenance (Quantizer.afterStep), to its latent weights; call after each optimizer step.
 */
export function constrainWeights(model: Module): void {
  for (const [, m] of model.namedModules()) {
    if (!isQuantLayer(m)) continue;
    m.kernelConstraint?.apply(m.weight);
    m.kernelQuantizer?.afterStep(m.weight);
  }
}

/**
 * Sets training progress p in [0, 1] on every scheduled quantizer of the model (IR-Net's EDE, the
 * FDA series length); call it once per epoch (e.g. fit's onEpoch) with (epoch + 1) / epochs.
 *
 * @example
 * fit(model, train, test, { ..., onEpoch: (e) => setQuantProgress(model, (e.epoch + 1) / epochs) });
 */
export function setQuantProgress(model: Module, p: number): void {
  for (const [, m] of model.namedModules()) {
    if (!isQuantLayer(m)) continue;
    for (const q of [m.inputQuantizer, m.kernelQuantizer]) if (isScheduled(q)) q.setProgress(p);
  }
}

/**
 * The nested-precision weight quantizers of a model (empty when it has none).
 *
 * @example
 * const widths = nestedQuantizers(model).map((q) => q.bits);
 */
export function nestedQuantizers(model: Module): NestedWeight[] {
  const out: NestedWeight[] = [];
  for (const [, m] of model.namedModules()) if (isQuantLayer(m) && m.kernelQuantizer instanceof NestedWeight) out.push(m.kernelQuantizer);
  return out;
}

/**
 * Makes every nested-precision layer of the model read `bits` (2..8) of its 8-bit weights from
 * now on (forward, summary and convert). Returns the previous width.
 *
 * @example
 * setNestedBits(model, 4);   // evaluate the 4-bit model
 * const deployed4 = convert(model, [1, 28, 28]);
 */
export function setNestedBits(model: Module, bits: number): number {
  checkNestedBits(bits, 'setNestedBits');
  const qs = nestedQuantizers(model);
  if (!qs.length) throw new Error('setNestedBits: the model has no nested-precision layers (build it with --quant nested / kernelQuantizer: \'nested\')');
  const prev = qs[0]!.bits;
  for (const q of qs) q.bits = bits;
  return prev;
}

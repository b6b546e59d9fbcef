/**
 * Post-training quantization of a trained float model (slimgrad-built or imported from ONNX):
 * every Conv2d/Linear gets per-output-channel symmetric b-bit weights and a per-tensor b-bit
 * input quantizer calibrated on a few unlabeled items. Layers are done in execution order, each
 * calibrated on the input produced by the already-quantized layers before it.
 *
 * Methods:
 * - rtn: round to nearest on the observer's grid.
 * - adaround (Nagel et al. 2020): per weight, floor or ceil, learned by minimizing
 *   ‖W̃x̃ − Wx‖² + λ·Σ(1 − |2h(V) − 1|^β) with h the rectified sigmoid (ζ = 1.1, γ = −0.1), β
 *   annealed 20 → 2 after a 20 % warm-up, x̃ the quantized model's input and Wx the float
 *   layer's output on the float model's input.
 * - aquant (Li et al. 2022): AdaRound weights, then a rounding border for the activations that
 *   is a function of the activation value, learned with those weights fixed (`aquantSchedule`
 *   'sequential'; 'joint' learns both together): round up iff frac(x/s) ≥ b_c(f),
 *   f = ⌊x/s⌋, b_c(f) = σ(Σ_d θ_{c,d}·t^d) with t = (f − lo)/(hi − lo − 1), a polynomial of degree
 *   `borderDegree` (default 2) per input channel (degree 0: one border per channel). Soft sigmoid
 *   rounding while learning (temperature annealed 0.2 → 0.02); deployed as a table of one border
 *   per channel and integer level (the coarse-grained border function: one lookup and compare per
 *   element, integer GEMM unchanged). A layer keeps its learned borders only when they lower its
 *   output error on the calibration items (with the learned weights) below round-to-nearest's.
 *
 * @example
 * const result = ptq(model, calib, [256, 1, 28, 28], { method: 'adaround', wBits: 4, aBits: 8 });
 * const restore = simulate(model, result);        // fake-quantized model for evaluation
 * const deployed = deployPtq(model, result, [1, 28, 28]);  // int8 kernels (.sgq)
 */
import { keep, scope } from '../../core/scope.js';
import { fromValues, type Tensor } from '../../core/tensor.js';
import { backward } from '../../autograd/backward.js';
import { noGrad } from '../../autograd/mode.js';
import {
  add, addScalar, conv2d, hardtanh, matmul, mul, mulScalar, powScalar, reshape, sigmoid, sub, sum,
} from '../../ops/index.js';
import { Conv2d, Linear, Sequential } from '../../nn/layers.js';
import { parameter, type Module } from '../../nn/module.js';
import { Adam } from '../../optim/optimizer.js';
import { Rng } from '../../util/rng.js';
import { isQuantLayer } from '../layers.js';
import { convert, type DeployedModel } from '../convert.js';
import { matStages } from '../runtime.js';
import { quantizeActivation, type ActivationGrid } from './activation.js';
import { gridFor, observeRange, quantizeWeights, type ObserverKind } from './observers.js';

export const PTQ_METHODS = ['rtn', 'adaround', 'aquant'] as const;
export type PtqMethod = (typeof PTQ_METHODS)[number];

export interface PtqOptions {
  method?: PtqMethod;
  /** Weight bits, one value or per layer (in `quantizableLayers` order); default 8. */
  wBits?: number | number[];
  /** Activation (layer input) bits; default 8. */
  aBits?: number;
  /** Weight range observer (per channel); default 'mse'. */
  weightObserver?: ObserverKind;
  /** Activation range observer (per tensor); default 'mse'. */
  actObserver?: ObserverKind;
  /** AdaRound/AQuant iterations per layer (default 400), batch size (default 32), Adam lr (default 1e-2), λ (default 0.01). */
  iters?: number;
  batch?: number;
  lr?: number;
  lambda?: number;
  seed?: number;
  /** AQuant: degree of the border polynomial in the activation level per input channel (default 2; 0: one border per channel). */
  borderDegree?: number;
  /**
   * AQuant: 'sequential' (default) learns the weight rounding exactly as AdaRound does, then the
   * borders with those weights fixed (`iters` each); 'joint' learns both together (`iters`).
   */
  aquantSchedule?: 'sequential' | 'joint';
}

/** The quantization of one Conv2d/Linear. */
export interface LayerQuant {
  path: string;
  wBits: number;
  aBits: number;
  /** Weight codes (weight layout), w ≈ codes·wStep[out channel]. */
  codes: Int8Array;
  wStep: Float32Array;
  act: ActivationGrid;
}

export interface PtqResult {
  method: PtqMethod;
  layers: LayerQuant[];
}

export type MatLayer = Conv2d | Linear;

/** The layers PTQ quantizes: every Conv2d/Linear without quantizers of its own, in execution (registration) order. */
export function quantizableLayers(model: Module): MatLayer[] {
  return model.namedModules().map(([, m]) => m).filter((m): m is MatLayer => (m instanceof Conv2d || m instanceof Linear) && !isQuantLayer(m));
}

/** y = x·w (+ b) of a layer with weights `w` (the layer's own op and options). */
function layerOp(layer: MatLayer, x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  if (layer instanceof Conv2d) return conv2d(x, w, b, layer.options);
  const y = matmul(x, w, { transB: true });
  if (!b) return y;
  const out = add(y, b);
  y.dispose();
  return out;
}

const dequantize = (codes: Int8Array, step: number): Float32Array => Float32Array.from(codes, (q) => q * step);

function weightValues(lq: LayerQuant, shape: readonly number[]): Float32Array {
  const per = lq.codes.length / shape[0]!;
  return Float32Array.from(lq.codes, (q, i) => q * lq.wStep[Math.floor(i / per)]!);
}

class Stop extends Error {}

/**
 * Fake quantization installed on a model's layers (forward overrides), plus input capture for
 * calibration. Quantized layers compute conv/linear on dequantized codes, bit-identical in
 * rounding to the deployed int8 kernels.
 */
class Simulation {
  readonly quant = new Map<MatLayer, { lq: LayerQuant; w: Tensor }>();
  enabled = true;
  private capture: { layer: MatLayer; out: Float32Array[]; shape: number[] } | null = null;
  constructor(readonly layers: MatLayer[]) {
    for (const layer of layers) {
      const forward = layer.forward.bind(layer);
      layer.forward = (x: Tensor) => {
        const c = this.capture;
        if (c && c.layer === layer) {
          c.out.push(Float32Array.from(x.values()));
          c.shape = [...x.shape];
          throw new Stop();
        }
        const q = this.enabled ? this.quant.get(layer) : undefined;
        if (!q) return forward(x);
        const xq = fromValues(dequantize(quantizeActivation(x.values() as Float32Array, x.shape, q.lq.act), q.lq.act.step), x.shape);
        const y = layerOp(layer, xq, q.w, layer.bias);
        xq.dispose();
        return y;
      };
    }
  }
  set(layer: MatLayer, lq: LayerQuant): void {
    this.quant.get(layer)?.w.dispose();
    this.quant.set(layer, { lq, w: keep(fromValues(weightValues(lq, layer.weight.shape), layer.weight.shape)) });
  }
  /** The inputs `layer` receives when `model` runs on `items` (in batches), as one array. */
  inputsOf(model: Module, layer: MatLayer, items: Float32Array, shape: number[], batch = 64): { data: Float32Array; shape: number[] } {
    const per = items.length / shape[0]!, chunks: Float32Array[] = [];
    let inner: number[] = [];
    for (let i = 0; i < shape[0]!; i += batch) {
      const n = Math.min(batch, shape[0]! - i);
      this.capture = { layer, out: chunks, shape: [] };
      try {
        noGrad(() => scope(() => model.call(fromValues(items.subarray(i * per, (i + n) * per), [n, ...shape.slice(1)]))));
        throw new Error(`ptq: layer ${layer.path} was not reached by the model's forward pass`);
      } catch (e) {
        if (!(e instanceof Stop)) throw e;
        inner = this.capture!.shape.slice(1);
      } finally {
        this.capture = null;
      }
    }
    const data = new Float32Array(chunks.reduce((s, c) => s + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      data.set(c, at);
      at += c.length;
    }
    return { data, shape: [shape[0]!, ...inner] };
  }
  remove(): void {
    for (const layer of this.layers) delete (layer as { forward?: unknown }).forward;
    for (const { w } of this.quant.values()) w.dispose();
    this.quant.clear();
  }
}

/** Activation grid of a layer input from the observer (unsigned when no value is negative). */
function activationGrid(x: Float32Array, bits: number, kind: ObserverKind): ActivationGrid {
  const signed = x.some((v) => v < 0);
  const g = gridFor(bits, signed);
  const r = observeRange(x, [x.length], { kind, bits, signed })[0]!;
  return { step: r > 0 ? Math.fround(r / g.hi) : 1, lo: g.lo, hi: g.hi };
}

const ZETA = 1.1, GAMMA = -0.1;

/**
 * AdaRound and AQuant's border for one layer: learns, with `learn.weights`, the rounding of `w`
 * (fixed per-channel steps; otherwise the weights stay `lq.codes`) and, with `learn.border`, the
 * activation rounding border function per input channel.
 */
function learnRounding(
  layer: MatLayer, lq: LayerQuant, xq: { data: Float32Array; shape: number[] }, target: { data: Float32Array; shape: number[] }, learn: { weights: boolean; border: boolean }, o: Required<Pick<PtqOptions, 'iters' | 'batch' | 'lr' | 'lambda' | 'seed' | 'borderDegree'>>,
): void {
  const border = learn.border;
  const wShape = [...layer.weight.shape], w = layer.weight.values() as Float32Array, outC = wShape[0]!;
  const per = w.length / outC, g = gridFor(lq.wBits, true);
  const floorW = new Float32Array(w.length), v0 = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const s = lq.wStep[Math.floor(i / per)]!, r = w[i]! / s, f = Math.floor(r);
    floorW[i] = f;
    // h(V0) = r − f: the soft rounding starts at the float weight.
    const p = Math.min(0.999, Math.max(0.001, (r - f - GAMMA) / (ZETA - GAMMA)));
    v0[i] = Math.log(p / (1 - p));
  }
  const V = parameter(v0, wShape, 'adaround.V');
  const c = xq.shape[1]!, n = xq.shape[0]!, perItem = xq.data.length / n, outPer = target.data.length / n;
  // AQuant border b_c(f) = σ(Σ_d θ_d[c]·t^d), t = (f − lo)/(levels − 1): θ_d zero = round to nearest.
  const a = lq.act, levels = a.hi - a.lo, degree = border && levels > 1 ? o.borderDegree : 0;
  const theta = border ? Array.from({ length: degree + 1 }, (_, d) => parameter(new Float32Array(c), [c], `aquant.border${d}`)) : [];
  const levelT = (f: number) => Math.min(levels - 1, Math.max(0, f - a.lo)) / Math.max(1, levels - 1);
  const opt = new Adam(learn.weights ? [V, ...theta] : theta, { lr: o.lr });
  const fixedW = learn.weights ? null : keep(fromValues(weightValues(lq, wShape), wShape));
  const stepShape = wShape.map((d, i) => (i === 0 ? d : 1));
  const stepT = keep(fromValues(lq.wStep, stepShape)), floorT = keep(fromValues(floorW, wShape));
  const bias = layer.bias ? keep(fromValues(layer.bias.values(), layer.bias.shape)) : null;
  const bShape = xq.shape.map((d, i) => (i === 1 ? d : 1));
  const rng = new Rng(o.seed, 0x5a);
  const warm = Math.floor(o.iters * 0.2);
  const hOf = () => hardtanh(addScalar(mulScalar(sigmoid(V), ZETA - GAMMA), GAMMA), 0, 1);
  for (let it = 0; it < o.iters; it++) {
    scope(() => {
      const b = Math.min(o.batch, n);
      const xb = new Float32Array(b * perItem), yb = new Float32Array(b * outPer);
      for (let j = 0; j < b; j++) {
        const k = Math.floor(rng.uniform() * n);
        xb.set(xq.data.subarray(k * perItem, (k + 1) * perItem), j * perItem);
        yb.set(target.data.subarray(k * outPer, (k + 1) * outPer), j * outPer);
      }
      const shape = [b, ...xq.shape.slice(1)];
      let x: Tensor;
      if (border) {
        // Soft border rounding: ⌊x/s⌋ + σ((frac − b_c(f))/T).
        const fl = new Float32Array(xb.length), fr = new Float32Array(xb.length), t = new Float32Array(degree > 0 ? xb.length : 0);
        for (let i = 0; i < xb.length; i++) {
          const v = xb[i]! / a.step;
          fl[i] = Math.floor(v);
          fr[i] = v - fl[i]!;
          if (degree > 0) t[i] = levelT(fl[i]!);
        }
        let logit = reshape(theta[0]!, bShape);
        for (let d = 1; d <= degree; d++) logit = add(logit, mul(reshape(theta[d]!, bShape), fromValues(Float32Array.from(t, (v) => v ** d), shape)));
        const temp = 0.2 * 0.1 ** (it / o.iters);
        const soft = sigmoid(mulScalar(sub(fromValues(fr, shape), sigmoid(logit)), 1 / temp));
        x = mulScalar(hardtanh(add(fromValues(fl, shape), soft), a.lo, a.hi), a.step);
      } else {
        x = fromValues(dequantize(quantizeActivation(xb, shape, a), a.step), shape);
      }
      const wq = fixedW ?? mul(hardtanh(add(floorT, hOf()), g.lo, g.hi), stepT);
      const d = sub(layerOp(layer, x, wq, bias), fromValues(yb, [b, ...target.shape.slice(1)]));
      let loss = mulScalar(sum(mul(d, d)), 1 / b);
      if (learn.weights && it >= warm) {
        const beta = 20 - ((it - warm) / Math.max(1, o.iters - warm)) * 18;
        const u = addScalar(mulScalar(hOf(), 2), -1);
        const reg = mulScalar(sum(addScalar(mulScalar(powScalar(mul(u, u), beta / 2), -1), 1)), o.lambda);
        loss = add(loss, reg);
      }
      backward(loss);
      opt.step();
      opt.zeroGrad();
    });
  }
  if (learn.weights) {
    const h = noGrad(() => scope(() => hOf().values()));
    for (let i = 0; i < w.length; i++) lq.codes[i] = Math.min(g.hi, Math.max(g.lo, floorW[i]! + (h[i]! >= 0.5 ? 1 : 0)));
  }
  if (border) {
    const th = theta.map((p) => p.values()), table = degree > 0 ? levels : 1;
    lq.act.border = Float32Array.from({ length: c * table }, (_, i) => {
      const ch = Math.floor(i / table), tk = degree > 0 ? levelT(a.lo + (i % table)) : 0;
      let z = 0;
      for (let d = 0; d <= degree; d++) z += th[d]![ch]! * tk ** d;
      return 1 / (1 + Math.exp(-z));
    });
    // Keep the learned borders only where they lower the layer's (hard) reconstruction error on the
    // calibration items, with the weights just learned: the border parameters follow noisy
    // mini-batch gradients of a relaxed (soft-rounding) objective.
    const learned = lq.act.border, withBorder = reconstructionError(layer, lq, xq, target);
    delete lq.act.border;
    if (withBorder < reconstructionError(layer, lq, xq, target)) lq.act.border = learned;
  }
  for (const t of [V, stepT, floorT, ...(bias ? [bias] : []), ...(fixedW ? [fixedW] : []), ...theta]) t.dispose();
  opt.dispose();
}

/** Σ(y_q − y)² / N of a quantized layer on quantized-model inputs `xq` against the float outputs `target` (N items). */
function reconstructionError(layer: MatLayer, lq: LayerQuant, xq: { data: Float32Array; shape: number[] }, target: { data: Float32Array; shape: number[] }): number {
  return noGrad(() => scope(() => {
    const x = fromValues(dequantize(quantizeActivation(xq.data, xq.shape, lq.act), lq.act.step), xq.shape);
    const y = layerOp(layer, x, fromValues(weightValues(lq, layer.weight.shape), layer.weight.shape), layer.bias).values();
    let e = 0;
    for (let k = 0; k < y.length; k++) e += (y[k]! - target.data[k]!) ** 2;
    return e / xq.shape[0]!;
  }));
}

/**
 * Quantizes `model`'s Conv2d/Linear layers from calibration items `calib` of shape `shape`
 * ([N, ...input]); the model's weights are not modified (see `simulate` and `deployPtq`).
 */
export function ptq(model: Module, calib: Float32Array, shape: number[], options: PtqOptions = {}): PtqResult {
  const method = options.method ?? 'rtn';
  if (!PTQ_METHODS.includes(method)) throw new RangeError(`ptq: unknown method '${method}' (available: ${PTQ_METHODS.join(', ')})`);
  const layers = quantizableLayers(model);
  if (layers.length === 0) throw new Error('ptq: the model has no Conv2d/Linear layer to quantize');
  const wBits = typeof options.wBits === 'object' ? options.wBits : layers.map(() => (options.wBits as number | undefined) ?? 8);
  if (wBits.length !== layers.length) throw new RangeError(`ptq: ${wBits.length} weight bit-widths for ${layers.length} layers`);
  const aBits = options.aBits ?? 8;
  const learn = { iters: options.iters ?? 400, batch: options.batch ?? 32, lr: options.lr ?? 1e-2, lambda: options.lambda ?? 0.01, seed: options.seed ?? 0, borderDegree: options.borderDegree ?? 2 };
  if (!(Number.isInteger(learn.borderDegree) && learn.borderDegree >= 0 && learn.borderDegree <= 4)) throw new RangeError(`ptq: borderDegree must be an integer in 0..4, got ${learn.borderDegree}`);
  if (![undefined, 'sequential', 'joint'].includes(options.aquantSchedule)) throw new RangeError(`ptq: aquantSchedule must be 'sequential' or 'joint', got '${String(options.aquantSchedule)}'`);
  const wasTraining = model.training;
  model.eval();
  const sim = new Simulation(layers);
  const result: PtqResult = { method, layers: [] };
  try {
    layers.forEach((layer, i) => {
      const xq = sim.inputsOf(model, layer, calib, shape);
      const w = layer.weight.values() as Float32Array;
      const range = observeRange(w, layer.weight.shape, { kind: options.weightObserver ?? 'mse', bits: wBits[i]!, perChannel: true, signed: true });
      const { codes, step } = quantizeWeights(w, layer.weight.shape[0]!, wBits[i]!, range);
      const lq: LayerQuant = { path: layer.path, wBits: wBits[i]!, aBits, codes, wStep: step, act: activationGrid(xq.data, aBits, options.actObserver ?? 'mse') };
      if (method !== 'rtn') {
        sim.enabled = false;
        const x = sim.inputsOf(model, layer, calib, shape);
        sim.enabled = true;
        const target = noGrad(() => scope(() => {
          const y = layerOp(layer, fromValues(x.data, x.shape), layer.weight, layer.bias);
          return { data: Float32Array.from(y.values()), shape: [...y.shape] };
        }));
        const o = { ...learn, seed: learn.seed + i };
        if (method === 'adaround' || options.aquantSchedule === 'joint') learnRounding(layer, lq, xq, target, { weights: true, border: method === 'aquant' }, o);
        else {
          learnRounding(layer, lq, xq, target, { weights: true, border: false }, o);
          learnRounding(layer, lq, xq, target, { weights: false, border: true }, o);
        }
      }
      sim.set(layer, lq);
      result.layers.push(lq);
    });
  } finally {
    sim.remove();
    model.train(wasTraining);
  }
  return result;
}

/**
 * Per quantized layer, the mean squared error of its output in the fake-quantized model (its
 * quantized input from the quantized layers before it, its quantized weights) against the float
 * layer's output in the float model, on items `x` of shape [N, ...]: the reconstruction error
 * AdaRound and AQuant minimize, measured on items of the caller's choice.
 */
export function layerOutputErrors(model: Module, result: PtqResult, x: Float32Array, shape: number[]): { path: string; mse: number }[] {
  const layers = quantizableLayers(model);
  if (layers.length !== result.layers.length) throw new Error(`layerOutputErrors: the model has ${layers.length} quantizable layers, the PTQ result ${result.layers.length}`);
  const wasTraining = model.training;
  model.eval();
  const sim = new Simulation(layers);
  try {
    layers.forEach((l, i) => sim.set(l, result.layers[i]!));
    return layers.map((layer) => {
      const xq = sim.inputsOf(model, layer, x, shape);
      sim.enabled = false;
      const xf = sim.inputsOf(model, layer, x, shape);
      sim.enabled = true;
      const { lq, w } = sim.quant.get(layer)!;
      return noGrad(() => scope(() => {
        const yq = layerOp(layer, fromValues(dequantize(quantizeActivation(xq.data, xq.shape, lq.act), lq.act.step), xq.shape), w, layer.bias).values();
        const yf = layerOp(layer, fromValues(xf.data, xf.shape), layer.weight, layer.bias).values();
        let e = 0;
        for (let k = 0; k < yf.length; k++) e += (yq[k]! - yf[k]!) ** 2;
        return { path: layer.path, mse: e / yf.length };
      }));
    });
  } finally {
    sim.remove();
    model.train(wasTraining);
  }
}

/** Installs the fake-quantized forward of `result` on `model`; returns a function that restores the float model. */
export function simulate(model: Module, result: PtqResult): () => void {
  const layers = quantizableLayers(model);
  if (layers.length !== result.layers.length) throw new Error(`simulate: the model has ${layers.length} quantizable layers, the PTQ result ${result.layers.length}`);
  const sim = new Simulation(layers);
  layers.forEach((l, i) => sim.set(l, result.layers[i]!));
  return () => sim.remove();
}

/**
 * The deployed model (int8 GEMM kernels, per-output-channel scales, BatchNorm folded into the
 * epilogue) of a PTQ'd Sequential. Codes of fewer than 8 bits are stored one per byte.
 */
export function deployPtq(model: Module, result: PtqResult, inputShape: number[]): DeployedModel {
  if (!(model instanceof Sequential)) throw new Error(`deployPtq: the deployed runtime runs Sequential models (got ${model.constructor.name}); evaluate other graphs with simulate()`);
  const deployed = convert(model, inputShape);
  const stages = matStages(deployed.stages);
  if (stages.length !== result.layers.length) throw new Error(`deployPtq: ${stages.length} conv/dense stages for ${result.layers.length} quantized layers`);
  stages.forEach((s, i) => {
    const lq = result.layers[i]!;
    s.kernel = 'int8';
    s.weights = lq.codes;
    s.inputStep = lq.act.step;
    if (lq.act.lo !== -128 || lq.act.hi !== 127) s.inputRange = [lq.act.lo, lq.act.hi];
    if (lq.act.border) s.inputBorder = lq.act.border;
    for (let c = 0; c < s.outC; c++) s.mul![c] = s.mul![c]! * lq.wStep[c]! * lq.act.step;
  });
  return deployed;
}

/** Bytes of the quantized model with weight codes bit-packed at their width: codes + per-channel steps + biases + other parameters (float32). */
export function ptqBytes(model: Module, result: PtqResult): number {
  const layers = quantizableLayers(model);
  let bits = 0;
  layers.forEach((l, i) => {
    const lq = result.layers[i]!;
    bits += lq.codes.length * lq.wBits + 32 * (lq.wStep.length + (l.bias?.size ?? 0) + 1);
  });
  const quantized = new Set(layers.flatMap((l) => [l.weight, ...(l.bias ? [l.bias] : [])]));
  for (const p of model.parameters()) if (!quantized.has(p)) bits += 32 * p.size;
  return Math.ceil(bits / 8);
}

/**
 * Conversion of a trained quantized Sequential into a deployable model: 1-bit weights packed 32
 * per word (+ per-channel scale), ternary weights as two bit planes, int8 weights with scales,
 * BatchNorm folded into per-channel multiplier/bias, and BN + sign folded into per-channel
 * integer thresholds when the next layer binarizes its input. `runDeployed` executes it with the
 * packed kernels; `encodeDeployed`/`decodeDeployed` (src/io/deployed-format.ts) are the file format.
 *
 * @example
 * const deployed = convert(model);                 // model: trained larqMnistBnn()
 * const bytes = encodeDeployed(deployed);          // ≈13.3 KiB
 * const logits = runDeployed(decodeDeployed(bytes), images, [n, 1, 28, 28]);
 */
import type { FloatArray } from '../core/dtype.js';
import { scope } from '../core/scope.js';
import { noGrad } from '../autograd/mode.js';
import { BatchNorm, Conv2d, Lambda, Linear, Sequential } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import {
  binaryConv, binaryGemm, convOut, floatGemm, im2col, int8Gemm, packSignRows, packSignsNHWC, packTernaryRows,
  packWeightsOHWI, popcount32, unpackRows, wordsFor, type ConvShape,
} from './kernels.js';
import { isQuantLayer, MaxPool2dLayer } from './layers.js';
import { roundHalfAway } from './ops.js';
import { layerPlan, type LayerKernel } from './plan.js';
import { channelMeanAbs, Lsq, quantizer, SteTern, type QuantizerConfig } from './quantizers.js';
import { fromValues } from '../core/tensor.js';
import { binaryGemmWasm, floatGemmWasm, int8GemmWasm, quantKernels, type QuantWasmExports } from './wasm.js';
import { quantizeActivation } from './ptq/activation.js';

/** A convolution (k > 0) or dense layer (k = 0) in deployable form. */
export interface MatStage {
  op: 'conv' | 'dense';
  kernel: LayerKernel;
  outC: number;
  inC: number;
  /** Square kernel size, stride and zero padding (conv only). */
  k: number;
  stride: number;
  pad: number;
  /**
   * binary: packed ±1 (conv: OHWI, wordsFor(inC) words per tap; dense: wordsFor(inC) per row);
   * binary_weights: packed ±1 rows over OIHW order; ternary_weights: 2 planes per row;
   * int8: Int8Array rows; float: Float32Array rows.
   */
  weights: Uint32Array | Int8Array | Float32Array;
  /** int8 only: input step (q = clamp(round(x / step), −128, 127)). */
  inputStep: number;
  /** int8 only (post-training quantization): input code range [lo, hi] when narrower than int8, and per-channel rounding borders (AQuant). */
  inputRange?: [number, number];
  inputBorder?: Float32Array;
  /** float fallback only: the layer's input quantizer, applied in float. */
  inputQuantizer?: QuantizerConfig;
  /** Epilogue per output channel: y = acc·mul + bias (scales and a following BatchNorm folded in). Absent after threshold folding. */
  mul?: Float32Array;
  bias?: Float32Array;
  /**
   * Set when the next layer binarizes this output: sign(acc·mul + bias) folded into a compare per
   * channel, emitting ±1 directly. direction +1: +1 iff acc ≥ threshold; −1: +1 iff acc ≤ threshold;
   * 0: constant, +1 iff threshold ≥ 0. Integer kernels (binary, int8) get Int32 thresholds.
   */
  threshold?: Int32Array | Float32Array;
  direction?: Int8Array;
}

export type Stage =
  | MatStage
  | { op: 'maxpool'; k: number }
  | { op: 'relu' }
  | { op: 'flatten' }
  | { op: 'affine'; mul: Float32Array; bias: Float32Array };

export interface DeployedModel {
  /** Input shape without the batch axis. */
  inputShape: number[];
  stages: Stage[];
}

const rowLength = (s: MatStage): number => (s.op === 'conv' ? s.inC * s.k * s.k : s.inC);

/** Per-channel scale and shift of a BatchNorm in eval mode: y·g + h. */
function bnAffine(bn: BatchNorm): { g: Float64Array; h: Float64Array } {
  const gamma = bn.gamma.values(), beta = bn.beta.values(), mean = bn.runningMean.values(), variance = bn.runningVar.values();
  const g = Float64Array.from(gamma, (v, c) => v / Math.sqrt(variance[c]! + bn.eps));
  const h = Float64Array.from(beta, (v, c) => v - mean[c]! * g[c]!);
  return { g, h };
}

/** Weights and epilogue of one conv/dense layer (before BatchNorm folding). */
function convertLayer(layer: Linear | Conv2d): MatStage {
  const plan = layerPlan(layer)!;
  const w = layer.weight.values() as FloatArray;
  const outC = layer.weight.shape[0]!;
  const inC = layer.weight.shape[1]!;
  const isConv = layer instanceof Conv2d;
  let k = 0, stride = 1, pad = 0;
  if (isConv) {
    const o = layer.options;
    const one = (v: number | [number, number] | undefined, d: number, what: string): number => {
      const [a, b] = v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v;
      if (a !== b) throw new Error(`convert: layer ${layer.path}: non-square ${what} [${a}, ${b}] is not supported`);
      return a;
    };
    if ((o.groups ?? 1) !== 1 || one(o.dilation, 1, 'dilation') !== 1) throw new Error(`convert: layer ${layer.path}: groups/dilation are not supported`);
    if (layer.weight.shape[2] !== layer.weight.shape[3]) throw new Error(`convert: layer ${layer.path}: non-square kernel`);
    k = layer.weight.shape[2]!;
    stride = one(o.stride, 1, 'stride');
    pad = one(o.padding, 0, 'padding');
  }
  const rows = outC, K = isConv ? inC * k * k : inC;
  const mul = new Float32Array(outC).fill(1);
  const bias = layer.bias ? Float32Array.from(layer.bias.values()) : new Float32Array(outC);
  const kq = isQuantLayer(layer) ? layer.kernelQuantizer : null;
  const iq = isQuantLayer(layer) ? layer.inputQuantizer : null;
  let weights: MatStage['weights'];
  let inputStep = 0;
  const scale = noGrad(() =>
    scope(() => {
      if (!plan.channelScale) return null;
      const s = kq instanceof SteTern ? kq.scale(layer.weight) : channelMeanAbs(layer.weight, 0);
      return s ? Float32Array.from(s.values()) : null;
    }),
  );
  if (scale) mul.set(scale);
  switch (plan.kernel) {
    case 'binary':
      weights = isConv ? packWeightsOHWI(w, outC, inC, k) : packSignRows(w, rows, K);
      break;
    case 'binary_weights':
      weights = packSignRows(w, rows, K);
      break;
    case 'ternary_weights': {
      const delta = (kq as SteTern).threshold(layer.weight);
      weights = packTernaryRows(Array.from(w, (v) => (v >= delta ? 1 : v <= -delta ? -1 : 0)), rows, K);
      break;
    }
    case 'int8': {
      const ws = (kq as Lsq).step.item(), xs = (iq as Lsq).step.item();
      weights = Int8Array.from(w, (v) => Math.min(127, Math.max(-128, roundHalfAway(v / ws))));
      inputStep = xs;
      mul.fill(ws * xs);
      break;
    }
    case 'float':
      // Plain layers keep their weights; unsupported fake quantizers are applied once here.
      weights = kq ? noGrad(() => scope(() => Float32Array.from(kq.forward(layer.weight).values()))) : Float32Array.from(w);
      if (iq) return { op: isConv ? 'conv' : 'dense', kernel: plan.kernel, outC, inC, k, stride, pad, weights, inputStep, mul, bias, inputQuantizer: iq.config() };
      break;
  }
  return { op: isConv ? 'conv' : 'dense', kernel: plan.kernel, outC, inC, k, stride, pad, weights, inputStep, mul, bias };
}

/** Whether `layers[from...]` reaches a layer that binarizes its input through shape-only/monotone stages. */
function nextBinarizes(layers: Module[], from: number): boolean {
  for (let i = from; i < layers.length; i++) {
    const l = layers[i]!;
    if (l instanceof MaxPool2dLayer || (l instanceof Lambda && l.label === 'flatten')) continue;
    return (l instanceof Linear || l instanceof Conv2d) && layerPlan(l)!.kernel === 'binary';
  }
  return false;
}

/**
 * The deployable form of a trained Sequential (eval-mode semantics: BatchNorm uses running
 * statistics). Supported layers: QuantConv2d/QuantLinear/Conv2d/Linear, BatchNorm, MaxPool2dLayer,
 * ReLU and Flatten (nn Lambdas).
 */
export function convert(model: Module, inputShape: number[]): DeployedModel {
  if (!(model instanceof Sequential)) throw new Error(`convert: expects a Sequential model, got ${model.constructor.name}`);
  const layers = model.layers;
  const stages: Stage[] = [];
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i]!;
    if (l instanceof Linear || l instanceof Conv2d) {
      const s = convertLayer(l);
      // Fold the BatchNorm that follows, directly or across max-pools when the combined scale is
      // positive everywhere (max commutes with an increasing affine map).
      let j = i + 1;
      while (layers[j] instanceof MaxPool2dLayer) j++;
      const pools = layers.slice(i + 1, j), bn = layers[j];
      let last = i;
      if (bn instanceof BatchNorm) {
        const { g, h } = bnAffine(bn);
        if (pools.length === 0 || s.mul!.every((m, c) => m * g[c]! > 0)) {
          for (let c = 0; c < s.outC; c++) {
            s.bias![c] = s.bias![c]! * g[c]! + h[c]!;
            s.mul![c] = s.mul![c]! * g[c]!;
          }
          last = j;
        }
      }
      // sign(max(z)) = max(sign(z)): thresholds may precede the pools.
      if (nextBinarizes(layers, last + 1)) toThresholds(s);
      stages.push(s);
      if (last === j) pools.forEach((p) => stages.push(...convertSimple(p)));
      i = last;
      continue;
    }
    stages.push(...convertSimple(l));
  }
  return { inputShape: [...inputShape], stages };
}

function convertSimple(l: Module): Stage[] {
  if (l instanceof MaxPool2dLayer) return [{ op: 'maxpool', k: l.kernel }];
  if (l instanceof BatchNorm) {
    const { g, h } = bnAffine(l);
    return [{ op: 'affine', mul: Float32Array.from(g), bias: Float32Array.from(h) }];
  }
  if (l instanceof Lambda && (l.label === 'relu' || l.label === 'flatten')) return [{ op: l.label }];
  throw new Error(`convert: layer ${l.path} (${l instanceof Lambda ? l.label : l.constructor.name}) is not supported (supported: conv/linear, BatchNorm, MaxPool2dLayer, relu, flatten)`);
}

/**
 * sign(acc·mul + bias) as a compare on acc. mul > 0: acc ≥ −bias/mul; mul < 0: acc ≤ −bias/mul;
 * mul = 0: constant sign(bias). Integer accumulators (binary, int8) get integer thresholds
 * (ceil / floor), so the compare stays integer-only.
 */
function toThresholds(s: MatStage): void {
  const integer = s.kernel === 'binary' || s.kernel === 'int8';
  const threshold = integer ? new Int32Array(s.outC) : new Float32Array(s.outC);
  const direction = new Int8Array(s.outC);
  for (let c = 0; c < s.outC; c++) {
    const m = s.mul![c]!, b = s.bias![c]!;
    if (m === 0) {
      threshold[c] = b >= 0 ? 0 : -1;
      continue;
    }
    const t = -b / m;
    threshold[c] = integer ? (m > 0 ? Math.ceil(t) : Math.floor(t)) : t;
    direction[c] = m > 0 ? 1 : -1;
  }
  delete s.mul;
  delete s.bias;
  s.threshold = threshold;
  s.direction = direction;
}

// ---------------------------------------------------------------------------------------------
// Execution

interface Activation {
  data: Float32Array;
  shape: number[];
}

/** Decoded float weights of the fallback kernels, cached per stage. */
const decoded = new WeakMap<MatStage, Float32Array>();

function floatWeights(s: MatStage): Float32Array {
  let w = decoded.get(s);
  if (!w) {
    const K = rowLength(s);
    w = s.kernel === 'binary_weights' ? unpackRows(s.weights as Uint32Array, s.outC, K, 'binary')
      : s.kernel === 'ternary_weights' ? unpackRows(s.weights as Uint32Array, s.outC, K, 'ternary')
      : (s.weights as Float32Array);
    decoded.set(s, w);
  }
  return w;
}

/** The float-fallback input quantizer applied to an activation. */
function quantizeInput(s: MatStage, x: Activation): Activation {
  if (!s.inputQuantizer) return x;
  const q = quantizer(s.inputQuantizer);
  return { data: noGrad(() => scope(() => Float32Array.from(q.forward(fromValues(x.data, x.shape)).values()))), shape: x.shape };
}

/** GEMMs on the wasm kernels when loaded, else the TypeScript kernels (identical integers). */
const gemm = {
  binary: (a: Uint32Array, b: Uint32Array, m: number, n: number, k: number, w = quantKernels()) => (w ? binaryGemmWasm(w, a, b, m, n, k) : binaryGemm(a, b, m, n, k)),
  int8: (a: Int8Array, b: Int8Array, m: number, n: number, k: number, w = quantKernels()) => (w ? int8GemmWasm(w, a, b, m, n, k) : int8Gemm(a, b, m, n, k)),
  float: (a: Float32Array, b: Float32Array, m: number, n: number, k: number, w = quantKernels()) => (w ? floatGemmWasm(w, a, b, m, n, k) : floatGemm(a, b, m, n, k)),
};

/** Popcounts of each (output channel, tap) weight word group: the zero-padding correction. */
const tapPopcounts = new WeakMap<MatStage, Int32Array>();

/**
 * Binary conv as packed im2col + binary GEMM: a row per output pixel holds the packed input
 * words of every tap (zeros outside the image). A zero word XORs to the weight bits, so taps
 * outside the image add popcount(w_tap) to the count; subtracting it and using the count of
 * inside values gives exactly the zero-padded result (as binaryConv). Output: [O, N·OH·OW].
 */
function binaryConvGemm(w: QuantWasmExports, s: MatStage, x: Uint32Array, cs: ConvShape): Int32Array {
  const [oh, ow] = convOut(cs);
  const cw = wordsFor(cs.c), kk = cs.k * cs.k, rowWords = kk * cw, rows = cs.n * oh * ow;
  const cols = new Uint32Array(rows * rowWords);
  const weights = s.weights as Uint32Array;
  let taps = tapPopcounts.get(s);
  if (!taps) {
    taps = new Int32Array(s.outC * kk);
    for (let i = 0; i < taps.length; i++) for (let t = 0; t < cw; t++) taps[i] += popcount32(weights[i * cw + t]!);
    tapPopcounts.set(s, taps);
  }
  for (let b = 0; b < cs.n; b++) {
    for (let y = 0; y < oh; y++) {
      for (let xo = 0; xo < ow; xo++) {
        const row = ((b * oh + y) * ow + xo) * rowWords;
        for (let i = 0; i < cs.k; i++) {
          const yy = y * cs.stride - cs.pad + i;
          if (yy < 0 || yy >= cs.h) continue;
          for (let j = 0; j < cs.k; j++) {
            const xx = xo * cs.stride - cs.pad + j;
            if (xx < 0 || xx >= cs.w) continue;
            const src = ((b * cs.h + yy) * cs.w + xx) * cw, dst = row + (i * cs.k + j) * cw;
            for (let t = 0; t < cw; t++) cols[dst + t] = x[src + t]!;
          }
        }
      }
    }
  }
  // Weights as the left operand: accumulators come out channel-major [O, rows].
  const acc = binaryGemmWasm(w, weights, cols, s.outC, rows, rowWords * 32);
  // The GEMM ran over rowWords·32 bits; padding bits are 0 in both operands, so only taps
  // outside the image need correcting.
  const bits = rowWords * 32;
  for (let r = 0; r < rows; r++) {
    const xo = r % ow, y = Math.floor(r / ow) % oh;
    const y0 = y * cs.stride - cs.pad, x0 = xo * cs.stride - cs.pad;
    const interior = y0 >= 0 && x0 >= 0 && y0 + cs.k <= cs.h && x0 + cs.k <= cs.w;
    for (let o = 0; o < s.outC; o++) {
      let pc = (bits - acc[o * rows + r]!) / 2, inside = kk;
      if (!interior) {
        for (let i = 0; i < cs.k; i++) for (let j = 0; j < cs.k; j++) {
          const yy = y0 + i, xx = x0 + j;
          if (yy < 0 || yy >= cs.h || xx < 0 || xx >= cs.w) {
            pc -= taps[o * kk + i * cs.k + j]!;
            inside--;
          }
        }
      }
      acc[o * rows + r] = inside * cs.c - 2 * pc;
    }
  }
  return acc;
}

interface Accumulators {
  acc: Int32Array | Float32Array;
  shape: number[];
  /** [outC, N·P] (GEMMs with the weights on the left) rather than [N·P, outC]. */
  channelMajor: boolean;
}

/** Accumulators of a conv/dense stage on its input (P = OH·OW output pixels, 1 for dense). */
function accumulate(s: MatStage, input: Activation): Accumulators {
  const x = quantizeInput(s, input);
  const n = x.shape[0]!;
  if (s.op === 'dense') {
    const K = s.inC;
    if (x.shape.length !== 2 || x.shape[1] !== K) throw new Error(`runDeployed: dense stage expects [N, ${K}], got [${x.shape}]`);
    const shape = [n, s.outC];
    switch (s.kernel) {
      case 'binary':
        return { acc: gemm.binary(packSignRows(x.data, n, K), s.weights as Uint32Array, n, s.outC, K), shape, channelMajor: false };
      case 'int8':
        return { acc: gemm.int8(quantizeInt8(s, x), s.weights as Int8Array, n, s.outC, K), shape, channelMajor: false };
      default:
        return { acc: gemm.float(x.data, floatWeights(s), n, s.outC, K), shape, channelMajor: false };
    }
  }
  if (x.shape.length !== 4 || x.shape[1] !== s.inC) throw new Error(`runDeployed: conv stage expects [N, ${s.inC}, H, W], got [${x.shape}]`);
  const cs: ConvShape = { n, c: s.inC, h: x.shape[2]!, w: x.shape[3]!, o: s.outC, k: s.k, stride: s.stride, pad: s.pad };
  const [oh, ow] = convOut(cs);
  const shape = [n, s.outC, oh, ow];
  const rows = n * oh * ow, K = rowLength(s);
  if (s.kernel === 'binary') {
    const packed = packSignsNHWC(x.data, n, s.inC, cs.h, cs.w);
    const w = quantKernels();
    return w ? { acc: binaryConvGemm(w, s, packed, cs), shape, channelMajor: true } : { acc: binaryConv(packed, s.weights as Uint32Array, cs), shape, channelMajor: false };
  }
  if (s.kernel === 'int8') {
    const cols = im2col(quantizeInt8(s, x), cs, new Int8Array(rows * K));
    return { acc: gemm.int8(s.weights as Int8Array, cols, s.outC, rows, K), shape, channelMajor: true };
  }
  const cols = im2col(x.data, cs, new Float32Array(rows * K));
  return { acc: gemm.float(floatWeights(s), cols, s.outC, rows, K), shape, channelMajor: true };
}

function quantizeInt8(s: MatStage, x: Activation): Int8Array {
  const [lo, hi] = s.inputRange ?? [-128, 127];
  return quantizeActivation(x.data, x.shape, { step: s.inputStep, lo, hi, border: s.inputBorder });
}

/** Applies the epilogue, writing NCHW (or [N, O]) from channel-major or pixel-major accumulators. */
function epilogue(s: MatStage, { acc, shape, channelMajor }: Accumulators): Activation {
  const n = shape[0]!, o = s.outC, p = shape.length === 4 ? shape[2]! * shape[3]! : 1;
  const out = new Float32Array(n * o * p);
  // Element q of (image b, channel c) is acc[src + q·step].
  const step = channelMajor ? 1 : o;
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < o; c++) {
      const dst = (b * o + c) * p, src = channelMajor ? c * n * p + b * p : b * p * o + c;
      if (s.threshold) {
        const t = s.threshold[c]!, d = s.direction![c]!;
        if (d > 0) for (let q = 0; q < p; q++) out[dst + q] = acc[src + q * step]! >= t ? 1 : -1;
        else if (d < 0) for (let q = 0; q < p; q++) out[dst + q] = acc[src + q * step]! <= t ? 1 : -1;
        else out.fill(t >= 0 ? 1 : -1, dst, dst + p);
      } else {
        const m = s.mul![c]!, t = s.bias![c]!;
        for (let q = 0; q < p; q++) out[dst + q] = acc[src + q * step]! * m + t;
      }
    }
  }
  return { data: out, shape };
}

function maxPool(x: Activation, k: number): Activation {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const oh = Math.floor(h / k), ow = Math.floor(w / k);
  const out = new Float32Array(n * c * oh * ow), src = x.data;
  for (let pl = 0; pl < n * c; pl++) {
    for (let y = 0; y < oh; y++) {
      for (let xo = 0; xo < ow; xo++) {
        const base = pl * h * w + y * k * w + xo * k;
        if (k === 2) {
          const a = Math.max(src[base]!, src[base + 1]!), b = Math.max(src[base + w]!, src[base + w + 1]!);
          out[(pl * oh + y) * ow + xo] = a > b ? a : b;
          continue;
        }
        let m = src[base]!;
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) {
            const v = src[base + i * w + j]!;
            if (v > m) m = v;
          }
        }
        out[(pl * oh + y) * ow + xo] = m;
      }
    }
  }
  return { data: out, shape: [n, c, oh, ow] };
}

/** y·mul[c] + bias[c] per channel of [N, C, ...]. */
function affine(x: Activation, mul: Float32Array, bias: Float32Array): Activation {
  const c = x.shape[1]!, p = x.shape.slice(2).reduce((a, b) => a * b, 1), out = new Float32Array(x.data.length), src = x.data;
  for (let plane = 0; plane < out.length / p; plane++) {
    const m = mul[plane % c]!, t = bias[plane % c]!;
    for (let q = plane * p, end = q + p; q < end; q++) out[q] = src[q]! * m + t;
  }
  return { data: out, shape: x.shape };
}

function relu(x: Activation): Activation {
  const out = new Float32Array(x.data.length), src = x.data;
  for (let i = 0; i < out.length; i++) out[i] = src[i]! > 0 ? src[i]! : 0;
  return { data: out, shape: x.shape };
}

/** Runs a deployed model on a batch `x` of shape [N, ...inputShape]; returns the output and its shape. */
export function runDeployed(model: DeployedModel, x: Float32Array, shape: number[]): Activation {
  if (shape.slice(1).join() !== model.inputShape.join()) throw new Error(`runDeployed: input shape [${shape}] does not match the model's [N, ${model.inputShape}]`);
  let h: Activation = { data: x, shape: [...shape] };
  for (const s of model.stages) {
    switch (s.op) {
      case 'conv':
      case 'dense': {
        h = epilogue(s, accumulate(s, h));
        break;
      }
      case 'maxpool':
        h = maxPool(h, s.k);
        break;
      case 'relu':
        h = relu(h);
        break;
      case 'flatten':
        h = { data: h.data, shape: [h.shape[0]!, h.shape.slice(1).reduce((a, b) => a * b, 1)] };
        break;
      case 'affine':
        h = affine(h, s.mul, s.bias);
        break;
    }
  }
  return h;
}

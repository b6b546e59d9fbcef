/**
 * The deploy runtime: runs a DeployedModel (made by convert.ts, stored by io/deployed-format.ts)
 * on float32 batches with the packed kernels of the backend contract (binaryGemm, int8Gemm,
 * floatGemm: wasm when build/quant.wasm is loaded, else the reference; identical integers).
 *
 * @example
 * const logits = runDeployed(convert(model, [1, 28, 28]), images, [n, 1, 28, 28]);
 */
import { quantizeActivation } from './ptq/activation.js';
import { kernels } from '../backends/index.js';
import type { Int8Post, Int8Step } from '../backends/kernels.js';
import { scope } from '../core/scope.js';
import { fromValues } from '../core/tensor.js';
import { noGrad } from '../autograd/mode.js';
import { convOut, im2col, maxPoolPlanes, packSignRows, packSignsNHWC, popcount32, wordsFor, type ConvShape } from './kernels.js';
import { denseWeights, rowLength } from './sparse.js';
import type { LayerKernel } from './plan.js';
import { nestedCode } from './ops.js';
import { reconstruct, unpackFactors, type SmartDealFactors } from './smartdeal.js';
import { checkNestedBits, quantizer, type QuantizerConfig } from './quantizers.js';

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
   * int8 and nested_weights: Int8Array rows; smartdeal: 4-bit coefficient codes; float: Float32Array rows.
   */
  weights: Uint32Array | Int8Array | Float32Array;
  /** smartdeal only: the row mask (1 bit per segment), the basis [rank, segment] and the largest coefficient exponent; `weights` holds the 4-bit codes of the kept rows. */
  rowMask?: Uint32Array;
  basis?: Float32Array;
  segment?: number;
  rank?: number;
  emax?: number;
  /** nested_weights only: the width (2..8 bits) read from the stored 8-bit codes (withBits changes it). */
  bits?: number;
  /**
   * Sparse encoding (sparse.ts; float and ternary stages): bitmap of the non-zero weights, row-major;
   * `weights` then holds only the non-zeros (float32 values, or one sign bit each for ternary).
   */
  mask?: Uint32Array;
  /** ternary only: negative codes weigh −negRatio (TTQ's W_n / W_p; the positive scale is in mul). */
  negRatio?: number;
  /**
   * binary and binary_weights only (SBNN): the weight values [α, β] of code 0 (packed bit 1) and
   * code 1 (bit 0), instead of −1 and +1. A binary stage's accumulator is then the float
   * α·Σa + (β − α)·(a·w01) (Σa: the sum of the window's ±1 inputs, zero padding adding 0), which
   * mul/bias or a float threshold take as usual. Needs file format version 4.
   */
  levels?: [number, number];
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

/** A residual block: body(x) + shortcut(x), the shortcut the identity when it has no stages. */
export interface ResidualStage {
  op: 'residual';
  body: Stage[];
  shortcut: Stage[];
}

export type Stage =
  | MatStage
  | ResidualStage
  | { op: 'maxpool'; k: number }
  | { op: 'relu' }
  | { op: 'flatten' }
  /** Global average pooling: [N, C, H, W] -> [N, C]. */
  | { op: 'gap' }
  | { op: 'affine'; mul: Float32Array; bias: Float32Array };

export interface DeployedModel {
  /** Input shape without the batch axis. */
  inputShape: number[];
  stages: Stage[];
}

/** The conv/dense stages of a stage list in execution order (a residual block's body, then its shortcut). */
export function matStages(stages: readonly Stage[]): MatStage[] {
  return stages.flatMap((s) => (s.op === 'conv' || s.op === 'dense' ? [s] : s.op === 'residual' ? [...matStages(s.body), ...matStages(s.shortcut)] : []));
}


export interface Activation {
  data: Float32Array;
  shape: number[];
}

/** Decoded float weights of the fallback kernels, cached per stage. */
const decoded = new WeakMap<MatStage, Float32Array>();

/** The float32 weight rows of a float-input stage (binary/ternary/sparse weights decoded, cached). */
export function floatWeights(s: MatStage): Float32Array {
  let w = decoded.get(s);
  if (!w) {
    w = s.kernel === 'nested_weights' ? nestedWeights(s)
      : s.kernel === 'smartdeal' ? reconstruct(smartdealFactors(s))
      : denseWeights(s);
    decoded.set(s, w);
  }
  return w;
}

const factorCache = new WeakMap<MatStage, SmartDealFactors>();

/**
 * The SmartDeal factors of a smartdeal stage (checked against its shape, cached).
 *
 * @example
 * const w = reconstruct(smartdealFactors(stage));   // the stage's weights as float32 [outC, K]
 */
export function smartdealFactors(s: MatStage): SmartDealFactors {
  let f = factorCache.get(s);
  if (!f) {
    f = unpackFactors({ ...s, K: rowLength(s) } as Parameters<typeof unpackFactors>[0], `deployed smartdeal stage (${s.outC} x ${rowLength(s)})`);
    factorCache.set(s, f);
  }
  return f;
}

/** The codes of a nested_weights stage at its width: q8 with 8 − bits low bits dropped. */
function nestedWeights(s: MatStage): Float32Array {
  const drop = 8 - checkNestedBits(s.bits, 'deployed nested_weights stage');
  return Float32Array.from(s.weights as Int8Array, (q) => nestedCode(q, drop));
}

/**
 * Whether a deployed model has nested-precision stages (readable at any width 2..8).
 *
 * @example
 * if (isNested(model)) model = withBits(model, 4);
 */
export const isNested = (model: DeployedModel): boolean => model.stages.some((s) => (s.op === 'conv' || s.op === 'dense') && s.kernel === 'nested_weights');

/**
 * The deployed model read at `bits` (2..8): every nested_weights stage reads its 8-bit codes with
 * 8 − bits low bits dropped; other stages are shared. One file, every width, chosen at load time.
 *
 * @example
 * const m4 = withBits(loadDeployed('nested.sgq'), 4);   // the 4-bit model
 * const logits = runPacked(m4, images, [n, 1, 28, 28]);
 */
export function withBits(model: DeployedModel, bits: number): DeployedModel {
  checkNestedBits(bits, 'withBits');
  if (!isNested(model)) throw new Error('withBits: the model has no nested-precision layers (train it with --quant nested)');
  return { ...model, stages: model.stages.map((s) => ((s.op === 'conv' || s.op === 'dense') && s.kernel === 'nested_weights' ? { ...s, bits } : s)) };
}

/** The float-fallback input quantizer applied to an activation. */
export function quantizeInput(s: MatStage, x: Activation): Activation {
  if (!s.inputQuantizer) return x;
  const q = quantizer(s.inputQuantizer);
  return { data: noGrad(() => scope(() => Float32Array.from(q.forward(fromValues(x.data, x.shape)).values()))), shape: x.shape };
}

/** Popcounts of each (output channel, tap) weight word group: the zero-padding correction. */
const tapPopcounts = new WeakMap<MatStage, Int32Array>();

/**
 * Binary conv as packed im2col + binary GEMM: a row per output pixel holds the packed input
 * words of every tap (zeros outside the image). A zero word XORs to the weight bits, so taps
 * outside the image add popcount(w_tap) to the count; subtracting it and using the count of
 * inside values gives exactly the zero-padded result (as binaryConv). Output: [O, N·OH·OW].
 */
function binaryConvGemm(s: MatStage, x: Uint32Array, cs: ConvShape): Int32Array {
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
  const acc = kernels('float32').binaryGemm(weights, cols, s.outC, rows, rowWords * 32);
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

/**
 * SBNN's {α, β} sum α·Σa + (β − α)·(a·w01) from the ±1 accumulator a·s (s = 2·w01 − 1, so
 * a·w01 = (a·s + Σa)/2) and the window sum Σa (both runtimes use it; float64, stored as float32).
 */
export const levelSum = (acc: number, sum: number, [alpha, beta]: readonly [number, number]): number => alpha * sum + (beta - alpha) * ((acc + sum) / 2);

/**
 * Σa of each output window of a conv on the signs of x (+1 for v ≥ 0, −1 below, as packed; taps in
 * the zero padding add 0): [N·OH·OW], row-major over (image, y, x). Dense: Σa per row (oh = ow = k = 1).
 */
function windowSums(x: Float32Array, cs: ConvShape): Int32Array {
  const [oh, ow] = convOut(cs), hw = cs.h * cs.w, pixel = new Int32Array(cs.n * hw);
  for (let b = 0; b < cs.n; b++) for (let c = 0; c < cs.c; c++) for (let q = 0; q < hw; q++) pixel[b * hw + q] += x[(b * cs.c + c) * hw + q]! < 0 ? -1 : 1;
  const out = new Int32Array(cs.n * oh * ow);
  for (let b = 0; b < cs.n; b++) for (let y = 0; y < oh; y++) for (let xo = 0; xo < ow; xo++) {
    let sum = 0;
    for (let i = 0; i < cs.k; i++) for (let j = 0; j < cs.k; j++) {
      const yy = y * cs.stride - cs.pad + i, xx = xo * cs.stride - cs.pad + j;
      if (yy >= 0 && yy < cs.h && xx >= 0 && xx < cs.w) sum += pixel[b * hw + yy * cs.w + xx]!;
    }
    out[(b * oh + y) * ow + xo] = sum;
  }
  return out;
}

/** An SBNN binary stage's accumulators: levelSum of each ±1 accumulator (rows·outC, channel-major or not) and its row's window sum. */
function withLevels(s: MatStage, acc: Int32Array, sums: Int32Array, channelMajor: boolean): Float32Array {
  const rows = sums.length, out = new Float32Array(acc.length);
  for (let r = 0; r < rows; r++) for (let o = 0; o < s.outC; o++) {
    const i = channelMajor ? o * rows + r : r * s.outC + o;
    out[i] = levelSum(acc[i]!, sums[r]!, s.levels!);
  }
  return out;
}

export interface Accumulators {
  acc: Int32Array | Float32Array;
  shape: number[];
  /** [outC, N·P] (GEMMs with the weights on the left) rather than [N·P, outC]. */
  channelMajor: boolean;
}

/** Accumulators of a conv/dense stage on its input (P = OH·OW output pixels, 1 for dense). */
export function accumulate(s: MatStage, input: Activation): Accumulators {
  const x = quantizeInput(s, input);
  const n = x.shape[0]!;
  if (s.op === 'dense') {
    const K = s.inC;
    if (x.shape.length !== 2 || x.shape[1] !== K) throw new Error(`runDeployed: dense stage expects [N, ${K}], got [${x.shape}]`);
    const shape = [n, s.outC];
    switch (s.kernel) {
      case 'binary': {
        const acc = kernels('float32').binaryGemm(packSignRows(x.data, n, K), s.weights as Uint32Array, n, s.outC, K);
        if (!s.levels) return { acc, shape, channelMajor: false };
        return { acc: withLevels(s, acc, windowSums(x.data, { n, c: K, h: 1, w: 1, o: s.outC, k: 1, stride: 1, pad: 0 }), false), shape, channelMajor: false };
      }
      case 'int8':
        return { acc: kernels('float32').int8Gemm(quantizeInt8(s, x), s.weights as Int8Array, n, s.outC, K), shape, channelMajor: false };
      case 'smartdeal':
        return { acc: kernels('float32').smartdealGemm(smartdealFactors(s), x.data, n), shape, channelMajor: false };
      default:
        return { acc: kernels('float32').floatGemm(x.data, floatWeights(s), n, s.outC, K), shape, channelMajor: false };
    }
  }
  if (x.shape.length !== 4 || x.shape[1] !== s.inC) throw new Error(`runDeployed: conv stage expects [N, ${s.inC}, H, W], got [${x.shape}]`);
  const cs: ConvShape = { n, c: s.inC, h: x.shape[2]!, w: x.shape[3]!, o: s.outC, k: s.k, stride: s.stride, pad: s.pad };
  const [oh, ow] = convOut(cs);
  const shape = [n, s.outC, oh, ow];
  const rows = n * oh * ow, K = rowLength(s);
  if (s.kernel === 'binary') {
    const acc = binaryConvGemm(s, packSignsNHWC(x.data, n, s.inC, cs.h, cs.w), cs);
    return { acc: s.levels ? withLevels(s, acc, windowSums(x.data, cs), true) : acc, shape, channelMajor: true };
  }
  if (s.kernel === 'int8') {
    const cols = im2col(quantizeInt8(s, x), cs, new Int8Array(rows * K));
    return { acc: kernels('float32').int8Gemm(s.weights as Int8Array, cols, s.outC, rows, K), shape, channelMajor: true };
  }
  const cols = im2col(x.data, cs, new Float32Array(rows * K));
  if (s.kernel === 'smartdeal') return { acc: kernels('float32').smartdealGemm(smartdealFactors(s), cols, rows), shape, channelMajor: false };
  return { acc: kernels('float32').floatGemm(floatWeights(s), cols, s.outC, rows, K), shape, channelMajor: true };
}

function quantizeInt8(s: MatStage, x: Activation): Int8Array {
  const [lo, hi] = s.inputRange ?? [-128, 127];
  return quantizeActivation(x.data, x.shape, { step: s.inputStep, lo, hi, border: s.inputBorder });
}

/** Applies the epilogue, writing NCHW (or [N, O]) from channel-major or pixel-major accumulators. */
export function epilogue(s: MatStage, { acc, shape, channelMajor }: Accumulators): Activation {
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

export function maxPool(x: Activation, k: number): Activation {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return { data: maxPoolPlanes(x.data, n * c, h, w, k), shape: [n, c, Math.floor(h / k), Math.floor(w / k)] };
}

/** y·mul[c] + bias[c] per channel of [N, C, ...]. */
export function affine(x: Activation, mul: Float32Array, bias: Float32Array): Activation {
  const c = x.shape[1]!, p = x.shape.slice(2).reduce((a, b) => a * b, 1), out = new Float32Array(x.data.length), src = x.data;
  for (let plane = 0; plane < out.length / p; plane++) {
    const m = mul[plane % c]!, t = bias[plane % c]!;
    for (let q = plane * p, end = q + p; q < end; q++) out[q] = src[q]! * m + t;
  }
  return { data: out, shape: x.shape };
}

export function relu(x: Activation): Activation {
  const out = new Float32Array(x.data.length), src = x.data;
  for (let i = 0; i < out.length; i++) out[i] = src[i]! > 0 ? src[i]! : 0;
  return { data: out, shape: x.shape };
}

/** Mean over each [H, W] plane: [N, C, H, W] -> [N, C]. */
export function globalAvgPool(x: Activation): Activation {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const p = h * w, out = new Float32Array(n * c), src = x.data;
  for (let pl = 0; pl < n * c; pl++) {
    let sum = 0;
    for (let q = pl * p, end = q + p; q < end; q++) sum += src[q]!;
    out[pl] = sum / p;
  }
  return { data: out, shape: [n, c] };
}

export function addActivations(a: Activation, b: Activation): Activation {
  if (a.shape.join() !== b.shape.join()) throw new Error(`runDeployed: residual body gives [${a.shape}], shortcut [${b.shape}]`);
  const out = new Float32Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i]! + b.data[i]!;
  return { data: out, shape: a.shape };
}

/** Called with each conv/dense stage and the activation it receives (validation: the int8 codes of every stage). */
export type StageObserver = (s: MatStage, input: Activation) => void;

/**
 * Whether a conv/dense stage runs as one int8Conv kernel (quantize, im2col, int8 GEMM and epilogue
 * in one call): int8 stages with a float epilogue and round-to-nearest input codes.
 */
export const fusedInt8 = (s: MatStage): boolean => s.kernel === 'int8' && !s.threshold && !s.inputBorder;

/** Output of a conv/dense stage on `x`; `post`: a following ReLU and/or max-pool applied too (fused int8 stages only). */
export function runMatStage(s: MatStage, x: Activation, post: Int8Post = {}): Activation {
  if (!fusedInt8(s)) {
    if (post.relu || post.pool) throw new Error('runMatStage: only fused int8 stages apply a ReLU or max-pool');
    return epilogue(s, accumulate(s, x));
  }
  const { step, shape } = int8Step(s, x.shape, post);
  return { data: kernels('float32').int8Conv(x.data, step.w, step.s, step.g, step.mul, step.bias, step.post), shape };
}

/** The int8Conv arguments of fused int8 stage s on input of `shape` with `post`, and its output shape. */
function int8Step(s: MatStage, shape: readonly number[], post: Int8Post): { step: Int8Step; shape: number[] } {
  const n = shape[0]!, [lo, hi] = s.inputRange ?? [-128, 127];
  const image = s.op === 'conv';
  if (image ? shape.length !== 4 || shape[1] !== s.inC : shape.length !== 2 || shape[1] !== s.inC) {
    throw new Error(`runDeployed: ${s.op} stage expects [N, ${s.inC}${image ? ', H, W' : ''}], got [${shape}]`);
  }
  const cs: ConvShape = image
    ? { n, c: s.inC, h: shape[2]!, w: shape[3]!, o: s.outC, k: s.k, stride: s.stride, pad: s.pad }
    : { n, c: s.inC, h: 1, w: 1, o: s.outC, k: 1, stride: 1, pad: 0 };
  const step = { w: s.weights as Int8Array, s: cs, g: { step: s.inputStep, lo, hi }, mul: s.mul!, bias: s.bias!, post };
  if (!image) return { step, shape: [n, s.outC] };
  const [oh, ow] = convOut(cs), k = post.pool || 1;
  return { step, shape: [n, s.outC, Math.floor(oh / k), Math.floor(ow / k)] };
}

/**
 * The fused int8 stages from stage i on, with the ReLUs and max-pools they fold and the flattens
 * between them, as one int8Convs chain on input of `shape`: its steps, output shape and the index
 * after its last stage (no steps when stage i is not a fused int8 stage).
 */
function int8Chain(stages: readonly Stage[], i: number, shape: number[]): { steps: Int8Step[]; shape: number[]; end: number } {
  const steps: Int8Step[] = [];
  let j = i;
  for (;;) {
    const s = stages[j];
    if (s?.op === 'flatten' && steps.length) {
      shape = [shape[0]!, shape.slice(1).reduce((a, b) => a * b, 1)];
      j++;
    } else if ((s?.op === 'conv' || s?.op === 'dense') && fusedInt8(s)) {
      const { post, skip } = fusedPost(stages, j), r = int8Step(s, shape, post);
      steps.push(r.step);
      shape = r.shape;
      j += skip + 1;
    } else return { steps, shape, end: j };
  }
}

/**
 * The ReLU and max-pool stages that follow stage i and fold into it when `fuses(stage)`: a ReLU,
 * then a max-pool (conv only), in this order (the runtime's own order, so the values are the same).
 */
export function fusedPost(stages: readonly Stage[], i: number, fuses: (s: MatStage) => boolean = fusedInt8): { post: Int8Post; skip: number } {
  const s = stages[i] as MatStage;
  if (!fuses(s)) return { post: {}, skip: 0 };
  let j = i + 1;
  const relu = stages[j]?.op === 'relu';
  if (relu) j++;
  const next = stages[j];
  const pool = s.op === 'conv' && next?.op === 'maxpool' ? next.k : 0;
  if (pool) j++;
  return { post: { relu, pool }, skip: j - i - 1 };
}

function runStages(stages: readonly Stage[], x: Activation, observe?: StageObserver): Activation {
  let h = x;
  for (let i = 0; i < stages.length; i++) {
    const s = stages[i]!;
    switch (s.op) {
      case 'conv':
      case 'dense': {
        // Without an observer, a run of fused int8 stages is one int8Convs call (the backend keeps
        // the activations between them); an observer sees every stage's input.
        const chain = observe ? null : int8Chain(stages, i, h.shape);
        if (chain?.steps.length) {
          h = { data: kernels('float32').int8Convs(h.data, chain.steps), shape: chain.shape };
          i = chain.end - 1;
          break;
        }
        observe?.(s, h);
        const { post, skip } = fusedPost(stages, i);
        h = runMatStage(s, h, post);
        i += skip;
        break;
      }
      case 'residual': {
        const body = runStages(s.body, h, observe);
        h = addActivations(body, s.shortcut.length ? runStages(s.shortcut, h, observe) : h);
        break;
      }
      case 'maxpool':
        h = maxPool(h, s.k);
        break;
      case 'gap':
        h = globalAvgPool(h);
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

/** Runs a deployed model on a batch `x` of shape [N, ...inputShape]; returns the output and its shape. */
export function runDeployed(model: DeployedModel, x: Float32Array, shape: number[], observe?: StageObserver): Activation {
  if (shape.slice(1).join() !== model.inputShape.join()) throw new Error(`runDeployed: input shape [${shape}] does not match the model's [N, ${model.inputShape}]`);
  return runStages(model.stages, { data: x, shape: [...shape] }, observe);
}

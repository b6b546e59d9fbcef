/**
 * The packed deploy runtime: runs a DeployedModel with activations kept sign-packed (NHWC, one
 * bit per channel) from one binary layer to the next. Binary convs are a packed im2col + popcount
 * GEMM in one wasm call (binaryConv*), BN + sign are integer thresholds applied inside it,
 * max-pooling on packed signs is an AND of sign bits (bit 1 = −1), and float-input layers (the
 * first conv, a float classifier, BWN/TWN/nested/pruned layers) run as one floatConv call each:
 * weights re-laid in the arena once, im2col, GEMM, epilogue and a following ReLU / max-pool fused,
 * or the signs packed directly when a binary layer follows (floatConvSigns). A binary ResNet
 * block's second conv adds the shortcut in its kernel (binaryConvFloat). Float activations between
 * stages are plain arrays. All of it goes through the backend contract; runtime.ts (`runDeployed`)
 * is the plain TypeScript oracle it is tested against. Results: integers identical, floats within
 * float32 rounding (sums in another order).
 *
 * @example
 * const logits = runPacked(convert(model, [1, 28, 28]), images, [n, 1, 28, 28]);
 */
import { kernels } from '../backends/index.js';
import type { Int8Post } from '../backends/kernels.js';
import { scope } from '../core/scope.js';
import { fromValues, Tensor } from '../core/tensor.js';
import { convOut, pixelMajorEpilogue, wordsFor, type ConvShape } from './kernels.js';
import {
  addActivations, affine, floatWeights, fusedInt8, fusedPost, globalAvgPool, levelSum, maxPool, quantizeInput, relu, runMatStage,
  type Activation, type DeployedModel, type MatStage, type Stage,
} from './runtime.js';
import { density, rowLength, toCsr, type Csr } from './sparse.js';

/** Sign-packed activations: [n, h, w, wordsFor(c)] (a dense layer's output has h = w = 1). */
interface Packed {
  bits: Uint32Array;
  n: number;
  h: number;
  w: number;
  c: number;
  /** Rows rather than an image: a dense layer's output, or a flatten (read as [n, h·w·c] in (c, h, w) order). */
  flat: boolean;
}

/** A float value may carry its plain signs, packed (a binary conv's float output computes both). */
type Value = { float: Activation; signs?: Packed } | { packed: Packed };

const k32 = () => kernels('float32');

/** Float NCHW (or [n, K]) values of packed signs. */
function unpack(p: Packed): Activation {
  const cw = wordsFor(p.c), hw = p.h * p.w, out = new Float32Array(p.n * p.c * hw);
  for (let b = 0; b < p.n; b++) for (let c = 0; c < p.c; c++) for (let q = 0; q < hw; q++) {
    out[(b * p.c + c) * hw + q] = (p.bits[(b * hw + q) * cw + (c >>> 5)]! >>> (c & 31)) & 1 ? -1 : 1;
  }
  return { data: out, shape: p.flat ? [p.n, p.c * hw] : [p.n, p.c, p.h, p.w] };
}

const asFloat = (v: Value): Activation => ('float' in v ? v.float : unpack(v.packed));

/** Packed signs of float NCHW / [n, K] values. */
function packFloat(t: Activation, th: MatStage | null): Packed {
  const [n, c] = t.shape as [number, number], h = t.shape[2] ?? 1, w = t.shape[3] ?? 1;
  const signs = th?.threshold ? { threshold: th.threshold, direction: th.direction! } : null;
  const bits = k32().packSigns(t.data, { n, c, p: h * w, channelsLast: false }, signs);
  return { bits, n, h, w, c, flat: t.shape.length === 2 };
}

/**
 * Densities at and below which a pruned float/ternary layer runs on the sparse GEMM rather than the
 * dense floatConv: where the sparse kernel was faster in `slimgrad bench quant`'s sparse rows
 * (LeNet-5 shapes, one thread, fastest of interleaved calls): convs up to 10 % non-zeros (1.04-1.37x
 * at batch 1 and 32; 0.89-1.04x at 20 %), dense layers at 5 % (0.87x at batch 1, 1.11x at 32;
 * 0.60-0.68x at 10 %). Dense layers read one input value per non-zero (no SIMD), so they need
 * sparser weights to win than convs, whose non-zeros each update a row of output pixels with f32x4.
 */
export const SPARSE_MAX_DENSITY: Readonly<Record<'conv' | 'dense', number>> = { conv: 0.1, dense: 0.05 };
let sparseLimits = SPARSE_MAX_DENSITY;

/**
 * Replaces the density limits of the sparse path (benchmarks: 0 forces dense, 1 sparse) for stages
 * run from now on (the choice is cached per stage); returns the previous limits.
 */
export function setSparseLimits(limits: Readonly<Record<'conv' | 'dense', number>>): Readonly<Record<'conv' | 'dense', number>> {
  const prev = sparseLimits;
  sparseLimits = limits;
  return prev;
}

/** CSR weights of a stage when it runs sparse (null: dense), cached per stage. */
const sparseWeights = new WeakMap<MatStage, Csr | null>();

function sparseOperator(s: MatStage): Csr | null {
  let csr = sparseWeights.get(s);
  if (csr === undefined) {
    csr = s.kernel !== 'binary_weights' && density(s) <= sparseLimits[s.op] ? toCsr(floatWeights(s), s.outC, rowLength(s)) : null;
    sparseWeights.set(s, csr);
  }
  return csr;
}

/** A pruned layer on the contract's sparse GEMM: conv as the engine's im2col per image [K, OH·OW], dense as [N, K, 1]. */
function sparseStage(s: MatStage, csr: Csr, x: Activation): Activation {
  const n = x.shape[0]!, K = rowLength(s);
  if (s.op === 'dense') return { data: k32().sparseGemm(csr.rowPtr, csr.cols, csr.values, x.data, s.outC, K, 1, n), shape: [n, s.outC] };
  const [h, w] = [x.shape[2]!, x.shape[3]!];
  const [oh, ow] = convOut({ n, c: s.inC, h, w, o: s.outC, k: s.k, stride: s.stride, pad: s.pad });
  const data = scope(() => {
    const cols = Tensor.uninitialized([n, K, oh * ow]); // im2col writes every element
    k32().im2col(fromValues(x.data, x.shape), cols, { n, c: s.inC, h, w, kh: s.k, kw: s.k, strideH: s.stride, strideW: s.stride, padH: s.pad, padW: s.pad, dilationH: 1, dilationW: 1, outH: oh, outW: ow }, 0, 0, s.inC, n);
    return k32().sparseGemm(csr.rowPtr, csr.cols, csr.values, cols.data() as Float32Array, s.outC, K, oh * ow, n);
  });
  return { data, shape: [n, s.outC, oh, ow] };
}

/** Stages whose input is float (float, binary_weights, ternary_weights, nested_weights: weights decoded to float once). */
const floatInput = (s: MatStage): boolean => s.kernel !== 'binary' && s.kernel !== 'int8' && s.kernel !== 'smartdeal';

/** Whether a following ReLU / max-pool folds into stage s: int8Conv and floatConv stages with a float epilogue. */
const fuses = (s: MatStage): boolean => fusedInt8(s) || (floatInput(s) && !s.threshold && !sparseOperator(s));

/**
 * A float-input stage on the contract's floatConv (weights decoded once and, on wasm, cached in
 * the arena; im2col, GEMM, epilogue and the fused `post` in one call), or on the sparse GEMM when
 * pruned enough. A following binary layer's threshold packs the raw sums.
 */
function floatStage(s: MatStage, input: Value, post: Int8Post): Value {
  let x = asFloat(input);
  if (s.inputQuantizer) x = quantizeInput(s, x);
  if (s.op === 'dense' && x.shape.length !== 2) throw new Error(`runPacked: dense stage expects [N, ${s.inC}], got [${x.shape}]`);
  if (s.op === 'conv' && (x.shape.length !== 4 || x.shape[1] !== s.inC)) throw new Error(`runPacked: conv stage expects [N, ${s.inC}, H, W], got [${x.shape}]`);
  const n = x.shape[0]!, csr = sparseOperator(s);
  let y: Activation;
  if (csr) y = sparseStage(s, csr, x);
  else {
    const cs: ConvShape = s.op === 'conv'
      ? { n, c: s.inC, h: x.shape[2]!, w: x.shape[3]!, o: s.outC, k: s.k, stride: s.stride, pad: s.pad }
      : { n, c: s.inC, h: 1, w: 1, o: s.outC, k: 1, stride: 1, pad: 0 };
    if (s.op === 'dense' && x.shape[1] !== s.inC) throw new Error(`runPacked: dense stage expects [N, ${s.inC}], got [${x.shape}]`);
    const [oh, ow] = convOut(cs), k = post.pool || 1;
    if (s.threshold) {
      // The next layer binarizes: the raw sums' signs come out packed (NHWC; a dense layer's as rows).
      const bits = k32().floatConvSigns(x.data, floatWeights(s), cs, { threshold: s.threshold, direction: s.direction! });
      return { packed: { bits, n, h: oh, w: ow, c: s.outC, flat: s.op === 'dense' } };
    }
    const data = k32().floatConv(x.data, floatWeights(s), cs, s.mul!, s.bias!, post);
    return { float: { data, shape: s.op === 'conv' ? [n, s.outC, Math.floor(oh / k), Math.floor(ow / k)] : [n, s.outC] } };
  }
  if (s.threshold) return { packed: packFloat(y, s) };
  return { float: affine(y, s.mul!, s.bias!) };
}

/** Dense binary weights re-laid for a packed [h, w, c] input: per pixel wordsFor(c) words over its channels. */
const pixelMajor = new WeakMap<MatStage, { key: string; w: Uint32Array }>();

function denseWeightsFor(s: MatStage, p: Packed): Uint32Array {
  const hw = p.h * p.w;
  if (hw === 1) return s.weights as Uint32Array;
  const key = `${p.c}x${hw}`, hit = pixelMajor.get(s);
  if (hit?.key === key) return hit.w;
  const cw = wordsFor(p.c), src = s.weights as Uint32Array, kw = wordsFor(s.inC), out = new Uint32Array(s.outC * hw * cw);
  for (let o = 0; o < s.outC; o++) for (let c = 0; c < p.c; c++) for (let q = 0; q < hw; q++) {
    const i = c * hw + q; // (c, h, w) flatten order
    if ((src[o * kw + (i >>> 5)]! >>> (i & 31)) & 1) out[(o * hw + q) * cw + (c >>> 5)] |= 1 << (c & 31);
  }
  pixelMajor.set(s, { key, w: out });
  return out;
}

/**
 * An SBNN stage's packed weights with one more output row of all +1 (bits 0; conv: after the
 * last filter in OHWI order, dense: after the last row of `weights`), cached per stage and layout:
 * that row's accumulator is Σa of the window, border and pad-bit handling included, from the same kernel.
 */
const sumRows = new WeakMap<MatStage, { key: Uint32Array; w: Uint32Array }>();

function withSumRow(s: MatStage, weights: Uint32Array): Uint32Array {
  const hit = sumRows.get(s);
  if (hit?.key === weights) return hit.w;
  const w = new Uint32Array(weights.length + weights.length / s.outC);
  w.set(weights);
  sumRows.set(s, { key: weights, w });
  return w;
}

/**
 * An SBNN binary stage (weights {α, β}): the ±1 accumulators a·s and the window sums Σa (the
 * all-ones row of withSumRow) from one binaryConv / binaryGemm call, then α·Σa + (β − α)·(a·w01)
 * per output (levelSum), sign-packed under the stage's float thresholds or through its epilogue
 * (+ `residual`, float32 addition).
 */
function levelStage(s: MatStage, x: Packed, residual?: Activation): Value {
  const o = s.outC + 1, n = x.n;
  let acc: Int32Array, p: number, shape: number[];
  if (s.op === 'conv') {
    const cs: ConvShape = { n, c: s.inC, h: x.h, w: x.w, o, k: s.k, stride: s.stride, pad: s.pad };
    const [oh, ow] = convOut(cs);
    acc = k32().binaryConv(x.bits, withSumRow(s, s.weights as Uint32Array), cs);
    p = oh * ow;
    shape = [n, s.outC, oh, ow];
  } else {
    const bits = x.h * x.w * wordsFor(x.c) * 32;
    acc = k32().binaryGemm(x.bits, withSumRow(s, denseWeightsFor(s, x)), n, o, bits);
    if (bits !== s.inC) for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! - (bits - s.inC);
    p = 1;
    shape = [n, s.outC];
  }
  const v = new Float32Array(n * p * s.outC);
  for (let r = 0; r < n * p; r++) for (let c = 0; c < s.outC; c++) v[r * s.outC + c] = levelSum(acc[r * o + c]!, acc[r * o + s.outC]!, s.levels!);
  const [h, w] = s.op === 'conv' ? [shape[2]!, shape[3]!] : [1, 1];
  if (s.threshold) {
    const bits = k32().packSigns(v, { n, c: s.outC, p, channelsLast: true }, { threshold: s.threshold, direction: s.direction! });
    return { packed: { bits, n, h, w, c: s.outC, flat: s.op === 'dense' } };
  }
  const y = pixelMajorEpilogue(v, n, p, s.outC, s.mul!, s.bias!);
  if (residual) {
    if (residual.shape.join() !== shape.join()) throw new Error(`runPacked: residual body gives [${shape}], shortcut [${residual.shape}]`);
    for (let i = 0; i < y.length; i++) y[i] = y[i]! + residual.data[i]!;
  }
  const float = { data: y, shape };
  return s.op === 'conv' ? { float, signs: packFloat(float, null) } : { float };
}

/** A binary conv/dense stage on packed input; `residual`: the shortcut a float-output conv's result is added to (in its kernel). */
function binaryStage(s: MatStage, input: Value, residual?: Activation): Value {
  if (s.levels) {
    const x = 'packed' in input ? input.packed : s.op === 'conv' ? input.signs ?? packFloat(input.float, null) : packFloat(input.float, null);
    if (s.op === 'conv' ? x.flat || x.c !== s.inC : x.c * x.h * x.w !== s.inC || !x.flat) throw new Error(`runPacked: ${s.op} stage expects ${s.op === 'conv' ? `${s.inC} channels` : `[N, ${s.inC}]`}, got [${x.n}, ${x.c}, ${x.h}, ${x.w}]`);
    return levelStage(s, x, residual);
  }
  const signs = s.threshold ? { threshold: s.threshold as Int32Array, direction: s.direction! } : null;
  if (s.op === 'conv') {
    const x = 'packed' in input ? input.packed : input.signs ?? packFloat(input.float, null);
    if (x.flat || x.c !== s.inC) throw new Error(`runPacked: conv stage expects ${s.inC} channels, got [${x.n}, ${x.c}, ${x.h}, ${x.w}]`);
    const cs: ConvShape = { n: x.n, c: s.inC, h: x.h, w: x.w, o: s.outC, k: s.k, stride: s.stride, pad: s.pad };
    const [oh, ow] = convOut(cs);
    if (signs) return { packed: { bits: k32().binaryConvSigns(x.bits, s.weights as Uint32Array, cs, signs), n: x.n, h: oh, w: ow, c: s.outC, flat: false } };
    const shape = [x.n, s.outC, oh, ow];
    if (residual && (residual.shape.length !== 4 || residual.shape.some((d, i) => d !== shape[i]))) throw new Error(`runPacked: residual body gives [${shape}], shortcut [${residual.shape}]`);
    const out = k32().binaryConvFloat(x.bits, s.weights as Uint32Array, cs, s.mul!, s.bias!, residual?.data);
    return { float: { data: out.values, shape }, signs: { bits: out.signs, n: x.n, h: oh, w: ow, c: s.outC, flat: false } };
  }
  const x = 'packed' in input ? input.packed : packFloat(input.float, null);
  const hw = x.h * x.w, n = x.n;
  if (x.c * hw !== s.inC || !x.flat) throw new Error(`runPacked: dense stage expects [N, ${s.inC}], got [${x.n}, ${x.c}, ${x.h}, ${x.w}]`);
  // Rows of hw·wordsFor(c) words; padding bits are 0 in both operands and count +1 each in k − 2·popcount.
  const bits = hw * wordsFor(x.c) * 32;
  const acc = k32().binaryGemm(x.bits, denseWeightsFor(s, x), n, s.outC, bits);
  if (bits !== s.inC) for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! - (bits - s.inC);
  if (signs) return { packed: { bits: k32().packSigns(acc, { n, c: s.outC, p: 1, channelsLast: true }, signs), n, h: 1, w: 1, c: s.outC, flat: true } };
  return { float: { data: pixelMajorEpilogue(acc, n, 1, s.outC, s.mul!, s.bias!), shape: [n, s.outC] } };
}

/** An int8 stage on the contract's int8 GEMM (with the fused `post`), or a smartdeal stage on its factors (runtime.ts does the quantize/im2col/epilogue). */
function runtimeStage(s: MatStage, input: Value, post: Int8Post): Value {
  return { float: runMatStage(s, asFloat(input), post) };
}

function runStages(stages: readonly Stage[], input: Value): Value {
  let v = input;
  for (let i = 0; i < stages.length; i++) {
    const s = stages[i]!;
    switch (s.op) {
      case 'conv':
      case 'dense': {
        const { post, skip } = fusedPost(stages, i, fuses);
        v = s.kernel === 'binary' ? binaryStage(s, v) : floatInput(s) ? floatStage(s, v, post) : runtimeStage(s, v, post);
        i += skip;
        break;
      }
      case 'residual': {
        const shortcut = s.shortcut.length ? asFloat(runStages(s.shortcut, v)) : asFloat(v), last = s.body[s.body.length - 1];
        if (last?.op === 'conv' && last.kernel === 'binary' && !last.threshold) {
          // A binary ResNet block: the second conv's kernel applies its epilogue and adds the shortcut.
          v = binaryStage(last, runStages(s.body.slice(0, -1), v), shortcut);
        } else v = { float: addActivations(asFloat(runStages(s.body, v)), shortcut) };
        break;
      }
      case 'maxpool':
        if ('packed' in v && !v.packed.flat) {
          const p: Packed = v.packed;
          v = { packed: { ...p, bits: k32().maxPoolSigns(p.bits, p.n, p.h, p.w, wordsFor(p.c), s.k), h: Math.floor(p.h / s.k), w: Math.floor(p.w / s.k) } };
        } else v = { float: maxPool(asFloat(v), s.k) };
        break;
      case 'gap':
        v = { float: globalAvgPool(asFloat(v)) };
        break;
      case 'relu':
        v = { float: relu(asFloat(v)) };
        break;
      case 'flatten':
        if ('packed' in v) {
          const p: Packed = v.packed;
          v = { packed: { ...p, flat: true } };
        } else v = { float: { data: v.float.data, shape: [v.float.shape[0]!, v.float.data.length / v.float.shape[0]!] } };
        break;
      case 'affine':
        v = { float: affine(asFloat(v), s.mul, s.bias) };
        break;
    }
  }
  return v;
}

/**
 * Runs a deployed model on a batch `x` of shape [N, ...inputShape] with packed activations
 * between binary layers; returns the output and its shape (as runDeployed).
 */
export function runPacked(model: DeployedModel, x: Float32Array, shape: number[]): Activation {
  if (shape.slice(1).join() !== model.inputShape.join()) throw new Error(`runPacked: input shape [${shape}] does not match the model's [N, ${model.inputShape}]`);
  // One stage scope: the backend may keep activations in its own memory from stage to stage; the result is copied out.
  return k32().stageScope(() => {
    const out = asFloat(runStages(model.stages, { float: { data: x, shape: [...shape] } }));
    return { data: out.data.slice(), shape: out.shape };
  });
}

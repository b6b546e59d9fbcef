/**
 * The kernel contract. Ops (src/ops) own the semantics: shapes, broadcasting, what backward
 * needs. Backends own only these kernels, which work on contiguous tensors (read `t.data()` in
 * TypeScript or `t.ptr` in wasm) and write into preallocated outputs. The reference backend
 * implements every kernel and is the oracle; a faster backend implements any subset for float32
 * and falls back to the reference for the rest (and for float64, used by gradient checks).
 */
import type { SmartDealFactors } from '../quant/smartdeal.js';
import type { Category } from '../core/ledger.js';
import type { Tensor } from '../core/tensor.js';
import type { CodeBits, GroupLayout, MetaPrecision, NoiseKey } from '../compress/quantize.js';
import type { ConvShape } from '../quant/kernels.js';
import type { FakeQuantAttrs } from '../quant/ops.js';

/**
 * Batched GEMM: for each b < batch,
 *   C_b = op(A_b) * op(B_b) + (accumulate ? C_b : 0)
 * with op(X) = X or X^T; op(A_b) is m x k and op(B_b) is k x n, row-major, densely packed
 * (A_b is m x k when !transA, k x m when transA). Element offsets of batch b: b*aStride (0 = the
 * same matrix for every b, i.e. broadcasting), b*bStride, b*m*n for C.
 */
export interface GemmArgs {
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  aStride: number;
  bStride: number;
  accumulate: boolean;
}

/** Geometry of a 2-D convolution / pooling window over NCHW input. */
export interface Conv2dGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  dilationH: number;
  dilationW: number;
  outH: number;
  outW: number;
}

/**
 * An implicit-GEMM convolution (Kernels.convGemm) over images [img, img+images) of x (images >= 1)
 * and channels [c0, c0+cg). cols_i is image i's im2col matrix ((cg*kh*kw) x (outH*outW), as im2col writes it;
 * with `flip` the window is read backwards: row (channel, i, j) holds tap (kh-1-i, kw-1-j)), and
 * A_i the m-row matrix at element i*aStride of A:
 *   forward (!weightGrad): C_i = A_i cols_i (+ C_i), A_i m x (cg*kh*kw), C_i m x (outH*outW) at element i*cStride of C
 *   weightGrad:            C = sum_i A_i cols_iᵀ (+ C), A_i m x (outH*outW), C m x (cg*kh*kw), the images added in order
 */
export interface ConvGemmArgs {
  img: number;
  images: number;
  c0: number;
  cg: number;
  m: number;
  aStride: number;
  cStride: number;
  weightGrad: boolean;
  flip: boolean;
  accumulate: boolean;
}

/** A tensor viewed as [outer, channels, inner] (e.g. NCHW as [N, C, H*W]); per-channel vectors are [channels]. */
export interface ChannelLayout {
  outer: number;
  channels: number;
  inner: number;
}

/**
 * Per-channel coefficients of channelAffine: out = (x - mean[c]) * scale[c] + shift[c]
 * (+ u * uScale[c] when `u` is given). All [channels].
 */
export interface ChannelAffineArgs {
  mean: Tensor;
  scale: Tensor;
  shift: Tensor;
  u?: Tensor | null;
  uScale?: Tensor | null;
}

/** Arithmetic of the `binary` kernel. */
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';
export const BINARY_OPS: readonly BinaryOp[] = ['add', 'sub', 'mul', 'div'];

/** Elementwise maps of the `unary` kernel; `s` is the scalar of mul_scalar, add_scalar and pow_scalar. */
export type UnaryOp = 'neg' | 'exp' | 'log' | 'sqrt' | 'tanh' | 'sigmoid' | 'softplus' | 'gelu' | 'gelu_grad' | 'mul_scalar' | 'add_scalar' | 'pow_scalar';

/** A tensor viewed as [outer, reduced, inner], reduced over the middle axis into [outer, inner]. */
export interface ReduceLayout {
  outer: number;
  reduced: number;
  inner: number;
}

/** A 16-bit float format of the half codecs. */
export type HalfFormat = 'fp16' | 'bf16';

/** One SGD step's settings (see sgdUpdate). */
export interface SgdStep {
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
  /** The first step with momentum: the buffer starts as the gradient. */
  first: boolean;
}

/** One Adam step's settings (see adamUpdate); stepSize = lr / (1 - beta1^t), invC2 = 1 / sqrt(1 - beta2^t). */
export interface AdamStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** AdamW: decay the weights by lr * weightDecay instead of adding weightDecay * w to the gradient. */
  decoupled: boolean;
  stepSize: number;
  invC2: number;
}

/** What one unit of a kernel's work is, for cost estimates: a GEMM multiply-add, an element, ... */
export type WorkKind = 'gemm' | 'im2col' | 'pool' | 'pool2x2' | 'avgPool' | 'elementwise' | 'hardtanh' | 'unary' | 'reduce' | 'softmax' | 'dropout' | 'channel' | 'sgd' | 'adam' | 'codec';

/** A parallelFor's whole work on one thread, in units of one kind (say GEMM multiply-adds). */
export interface ParallelWork {
  kind: WorkKind;
  units: number;
}

export interface Kernels {
  /**
   * Runs body(i, slot) for every i in [0, count). The bodies of different indices must write
   * disjoint memory and call only kernels that return nothing (no value back to the caller; no
   * kernel that reads tensor values in JavaScript), each with the same arguments whatever the slot,
   * so that results do not depend on how indices are spread. A backend with threads gives each
   * thread a contiguous block of indices, `slot` the thread's number (< parallelSlots(count), for
   * per-thread scratch), and runs each block's kernel calls as one job (one wake-up and one join
   * for, say, a conv layer's im2col, GEMM and bias over a block of images); the reference runs
   * them in order in slot 0. With `work`, a backend runs all indices on the calling thread when
   * that much work does not pay for waking another (then its kernels may still split themselves).
   */
  parallelFor(count: number, body: (i: number, slot: number) => void, work?: ParallelWork): void;
  /** The slots parallelFor(count, ..., work) passes its bodies: scratch to allocate per slot. */
  parallelSlots(count: number, work?: ParallelWork): number;
  /** C = op(A) op(B) (+ C). See GemmArgs. */
  gemm(a: Tensor, b: Tensor, c: Tensor, args: GemmArgs): void;
  /** Convolution as a GEMM whose B operand is the im2col columns of x, never written out. See ConvGemmArgs. */
  convGemm(a: Tensor, x: Tensor, c: Tensor, g: Conv2dGeometry, args: ConvGemmArgs): void;
  /**
   * Unfolds channels [c0, c0+cg) of image `img` of x (NCHW) into cols, a (cg*kh*kw) x (outH*outW)
   * row-major matrix; padding reads as 0. With `images` > 1, images img, img+1, ... follow one
   * another in cols (one such matrix each), so that a backend can spread them over threads.
   */
  im2col(x: Tensor, cols: Tensor, g: Conv2dGeometry, img: number, c0: number, cg: number, images?: number): void;
  /** The adjoint of im2col: adds cols back into channels [c0, c0+cg) of images [img, img+images) of dx. */
  col2im(cols: Tensor, dx: Tensor, g: Conv2dGeometry, img: number, c0: number, cg: number, images?: number): void;
  /**
   * Max pooling of x (NCHW, n*c planes; dilation ignored) into out ([n, c, outH, outW]); index (uint8,
   * same shape) gets the window position i*kw+j of the first maximum (padding reads as -Infinity;
   * 0 when no element beats -Infinity).
   */
  maxPool2d(x: Tensor, out: Tensor, index: Tensor, g: Conv2dGeometry): void;
  /**
   * Adjoint of maxPool2d: writes every element of dx (n*c planes): zero, plus each gy element
   * added at its window's recorded position (if not padding), so dx needs no zero fill.
   */
  maxPool2dGrad(gy: Tensor, index: Tensor, dx: Tensor, g: Conv2dGeometry): void;
  /** Per-channel mean and biased variance of x over (outer, inner) into mean/variance ([channels]). */
  channelMoments(x: Tensor, mean: Tensor, variance: Tensor, layout: ChannelLayout): void;
  /** out = (x - mean[c]) * scale[c] + shift[c] (+ u * uScale[c]): batch-norm forward and input gradient. */
  channelAffine(x: Tensor, out: Tensor, args: ChannelAffineArgs, layout: ChannelLayout): void;
  /**
   * Per-channel sums of batch-norm backward: sumG[c] = sum of g, sumGXhat[c] = sum of
   * g * (x - mean[c]) * invStd[c], over (outer, inner).
   */
  channelGradSums(g: Tensor, x: Tensor, mean: Tensor, invStd: Tensor, sumG: Tensor, sumGXhat: Tensor, layout: ChannelLayout): void;
  /** y = x > 0 ? x : x * slope (0 when slope is 0: ReLU; else leaky ReLU); mask (uint8, when given) = x > 0. x, y, mask contiguous, same size. */
  reluMask(x: Tensor, y: Tensor, mask: Tensor | null, slope: number): void;
  /** out = mask ? g : g * scaleOff (mask uint8): the backward of masked activations. */
  maskMul(g: Tensor, mask: Tensor, out: Tensor, scaleOff: number): void;
  /**
   * out[i] = a[i] op b[i % b.size] (b repeats along the leading axes: same shape, or a row added
   * to every row). a, b, out contiguous; out may be a (in place); out.size a multiple of b.size.
   */
  binary(op: BinaryOp, a: Tensor, b: Tensor, out: Tensor): void;
  /**
   * In-place SGD on w from g: d = g + weightDecay * w; with momentum, buf = first ? d : momentum * buf + d
   * and w -= lr * (nesterov ? d + momentum * buf : buf), else w -= lr * d. buf is null without momentum.
   */
  sgdUpdate(w: Tensor, g: Tensor, buf: Tensor | null, step: SgdStep): void;
  /** In-place Adam/AdamW on w and its moments m, v from g: w -= stepSize * m / (sqrt(v) * invC2 + eps). */
  adamUpdate(w: Tensor, g: Tensor, m: Tensor, v: Tensor, step: AdamStep): void;

  /** dst = src broadcast to dst's shape (size-1 axes and missing leading axes repeat); both may be strided views, dst not aliasing src. */
  copy(src: Tensor, dst: Tensor): void;
  /** Every element of dst (contiguous) set to value. */
  fill(dst: Tensor, value: number): void;
  /** out[i] = f(x[i], s) for the map `op` (x, out contiguous, same size; out may be x). */
  unary(op: UnaryOp, x: Tensor, out: Tensor, s: number): void;
  /** y = min(max(x, min), max); mask (uint8, when given) = min < x < max. */
  hardtanhMask(x: Tensor, y: Tensor, mask: Tensor | null, min: number, max: number): void;
  /** out = x + bias[c] over the [outer, channels, inner] layout (conv bias). */
  channelAdd(x: Tensor, bias: Tensor, out: Tensor, layout: ChannelLayout): void;
  /**
   * y[o, i] = sum or max of x[o, r, i] over r. For max, mask (uint8, x's size, when given) gets 1 at
   * the first maximum of each (o, i) and 0 elsewhere.
   */
  reduce(op: 'sum' | 'max', x: Tensor, y: Tensor, layout: ReduceLayout, mask: Tensor | null): void;
  /** Softmax (or log-softmax with `log`) of each of `rows` rows of n values. */
  softmax(x: Tensor, y: Tensor, rows: number, n: number, log: boolean): void;
  /**
   * Cross-entropy of logits [rows, n] against int32 labels (each in [0, n)): probs = softmax rows,
   * returns the mean over rows of logsumexp(row) - row[label].
   */
  crossEntropy(logits: Tensor, labels: Tensor, probs: Tensor): number;
  /** out = (probs - onehot(labels)) * scale, probs [rows, n]. */
  crossEntropyGrad(probs: Tensor, labels: Tensor, out: Tensor, scale: number): void;
  /** out = x / (1 - p) where the uniform of element i under `seed` (util/rng uniformAt, stream 0x0d0d) is >= p, else 0. */
  dropout(x: Tensor, out: Tensor, p: number, seed: number): void;
  /** out[i, :] = table[ids[i], :] for int32 ids (each in [0, rows of table)); table [V, D]. */
  gatherRows(table: Tensor, ids: Tensor, out: Tensor): void;
  /** out[ids[i], :] += g[i, :] (out zero-filled by the caller): the adjoint of gatherRows. */
  scatterAddRows(g: Tensor, ids: Tensor, out: Tensor): void;
  /** Average pooling (padding counts in the divisor) of x (NCHW) into out ([n, c, outH, outW]). */
  avgPool2d(x: Tensor, out: Tensor, g: Conv2dGeometry): void;
  /** Adjoint of avgPool2d: dx (zero-filled by the caller) += each gy spread over its window. */
  avgPool2dGrad(gy: Tensor, dx: Tensor, g: Conv2dGeometry): void;

  // Fake quantization (src/quant/ops.ts: the maps, their pseudo-gradients, the learned scalar p).
  /** out = q(x) for the map `a` (x, out contiguous, same size); p is the learned scalar (PACT alpha, LSQ step, TTQ scale), 0 when the map has none. */
  fakeQuant(x: Tensor, out: Tensor, a: FakeQuantAttrs, p: number): void;
  /**
   * gx = g·∂q/∂x and gp = g·∂q/∂p elementwise (g null: the derivatives themselves); a null output
   * is not computed; gp is 0 for maps without a learned scalar. All contiguous, x's size.
   */
  fakeQuantGrad(x: Tensor, g: Tensor | null, gx: Tensor | null, gp: Tensor | null, a: FakeQuantAttrs, p: number): void;
  /**
   * out = sin(x + phase), x + phase in float64 (FDA's noise-adaptation skip; phase π/2 gives its
   * derivative): within 1e-15 of Math.sin before rounding to out's dtype, so a float32 result is
   * the reference's or one ulp from it.
   */
  sin(x: Tensor, out: Tensor, phase: number): void;
  /**
   * SmartDeal's coefficient fit (quant/smartdeal.ts decompose), in float64: ce [rows, r] = w·pᵀ for
   * segments w [rows, S] and p [r, S] (float64; each sum from 0 in order of j); returns max |ce|
   * (NaN when a sum is NaN).
   */
  smartdealProject(w: Tensor, p: Tensor): number;
  /**
   * The projection's power-of-two codes: codes [rows, r] (int32) = smartdealCode(ce, emax) of
   * ce = w·pᵀ as smartdealProject sums it; returns how many codes differ from those codes held
   * before. With `sums` (float64 [r·r + r·S]) it also adds the basis step's normal equations over
   * the rows in order: ctc[a, b] += c_a·c_b, ctw[a, j] += c_a·w[j] (c the code values, rows with
   * c_a = 0 skipped for that a).
   */
  smartdealCodes(w: Tensor, p: Tensor, codes: Tensor, sums: Tensor | null, emax: number): number;

  // Activation-compression codecs (src/compress/codecs.ts; layout and rounding in compress/quantize.ts).
  /** Every group's (min, max) of x (rows x rowLength, groups of groupSize within a row) into ranges (float64, 2 per group). */
  groupRanges(x: Tensor, ranges: Tensor, layout: GroupLayout): void;
  /**
   * Codes of x at `bits` from per-group (min, step) pairs in meta (float64) into codes (uint8,
   * zero-filled, LSB-first); `noise` keys stochastic rounding (null: round to nearest).
   */
  quantizeGroups(x: Tensor, meta: Tensor, codes: Tensor, layout: GroupLayout, bits: CodeBits, noise: NoiseKey | null): void;
  /**
   * groupRanges, the (min, step) of every group in `precision` (compress/quantize.ts
   * metaFromRanges) and quantizeGroups in one call, into meta (float64 pairs) and codes
   * (zero-filled). False when precision is fp16 and some group cannot be represented in it: meta
   * and codes are then incomplete and the caller redoes the call in fp32.
   */
  groupQuantize(x: Tensor, meta: Tensor, codes: Tensor, layout: GroupLayout, bits: CodeBits, noise: NoiseKey | null, precision: MetaPrecision): boolean;
  /** Inverse of quantizeGroups with float32 (min, step) pairs: out[i] = min + code * step. */
  dequantizeGroups(codes: Tensor, meta: Tensor, out: Tensor, layout: GroupLayout, bits: CodeBits): void;
  /** 0/1 values of mask (integer dtype) -> LSB-first bits (every byte written); the index of the first value not 0 or 1, or -1. */
  packMask(mask: Tensor, bits: Tensor): number;
  /** Inverse of packMask: mask.size bits into mask. */
  unpackMask(bits: Tensor, mask: Tensor): void;
  /** float32 x -> 16-bit patterns (fp16 or bf16, nearest even; compress/float16.ts) in bytes (uint8, 2 per value). */
  halfEncode(x: Tensor, bytes: Tensor, format: HalfFormat): void;
  /** Inverse of halfEncode: out.size 16-bit patterns from bytes into float32 out. */
  halfDecode(bytes: Tensor, out: Tensor, format: HalfFormat): void;
  /**
   * COMET error-bounded encode (compress/comet.ts, its stream format bit for bit): float32 x within
   * the absolute `bound`, as a new uint8 tensor of the stream's length (which depends on the data)
   * booked under `category`.
   */
  cometEncode(x: Tensor, bound: number, category: Category): Tensor;
  /** Inverse of cometEncode: the stream (bytes.size = its length) into float32 out; a RangeError when it is truncated or corrupt. */
  cometDecode(bytes: Tensor, out: Tensor): void;

  // Packed inference kernels (the deploy runtime, src/quant/runtime.ts; on the JS heap).
  /**
   * out[i, j] = k - 2 popcount(a_i XOR b_j) for sign-packed rows a [m, ceil(k/32)] and b [n, ceil(k/32)]
   * (bit 1 = -1, padding bits 0): the +-1 dot products of rows of length k.
   */
  binaryGemm(a: Uint32Array, b: Uint32Array, m: number, n: number, k: number): Int32Array;
  /** out[i, j] = sum_t a[i, t] b[j, t] with int32 accumulation (b given by rows). */
  int8Gemm(a: Int8Array, b: Int8Array, m: number, n: number, k: number): Int32Array;
  /**
   * An int8 conv stage on float NCHW input x (a dense layer: a 1x1 conv on [n, c, 1, 1]): codes
   * q = clamp(roundHalfAway(x / step), lo, hi) (NaN: 0), zero padding (code 0), OIHW int8 weight
   * rows w [o, c·k·k], int32 accumulation, y = acc·mul[o] + bias[o] computed in float64 and
   * rounded to float32 (then max(y, 0) with post.relu, then a post.pool x post.pool max-pool with
   * stride = window, as maxPoolPlanes): float32 NCHW [n, o, outH, outW] (pooled: ⌊outH/pool⌋, ⌊outW/pool⌋).
   */
  int8Conv(x: Float32Array, w: Int8Array, s: ConvShape, g: Int8Grid, mul: Float32Array, bias: Float32Array, post?: Int8Post): Float32Array;
  /**
   * A float conv stage on float NCHW input x (a dense layer: a 1x1 conv on [n, c, 1, 1]): OIHW
   * weight rows w [o, c·k·k], zero padding, float32 sums (in any order), y = f32(f32(acc·mul[o]) +
   * bias[o]) (mul null: y = acc), then post.relu and post.pool as int8Conv: float32 NCHW
   * [n, o, outH, outW] (pooled: ⌊outH/pool⌋, ⌊outW/pool⌋). Float, BWN/TWN, nested and pruned
   * stages of the packed runtime.
   */
  floatConv(x: Float32Array, w: Float32Array, s: ConvShape, mul: Float32Array | null, bias: Float32Array | null, post?: Int8Post): Float32Array;
  /** floatConv's raw sums (no epilogue) sign-packed under float thresholds `t` (packSigns): [n, outH, outW, wordsFor(o)]. */
  floatConvSigns(x: Float32Array, w: Float32Array, s: ConvShape, t: SignThresholds): Uint32Array;
  /**
   * int8Conv steps in sequence, each step's output the next step's input (its ConvShape must fit
   * that output: n·c·h·w values); returns the last output. A backend may keep the intermediate
   * activations in its own memory (no copy out and back in between steps).
   */
  int8Convs(x: Float32Array, steps: readonly Int8Step[]): Float32Array;
  /** out[i, j] = sum_t a[i, t] b[j, t] in float32 (b given by rows). */
  floatGemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number): Float32Array;
  /**
   * Binary conv on sign-packed NHWC input x [n, h, w, wordsFor(c)] and packed OHWI weights
   * [o, k, k, wordsFor(c)], zero padding (taps outside the image skipped): int32 accumulators
   * [n, outH, outW, o].
   */
  binaryConv(x: Uint32Array, w: Uint32Array, s: ConvShape): Int32Array;
  /**
   * binaryConv followed by y = acc·mul[o] + bias[o] (float64, rounded to float32): float NCHW
   * values [n, o, outH, outW], plus `residual` (the same shape, float32 addition) when given; and
   * their plain signs packed as packSigns does ([n, outH, outW, wordsFor(o)]: a next binary layer's input).
   */
  binaryConvFloat(x: Uint32Array, w: Uint32Array, s: ConvShape, mul: Float32Array, bias: Float32Array, residual?: Float32Array): { values: Float32Array; signs: Uint32Array };
  /**
   * Runs `f` (a deployed model's stages) as one scope of the stage kernels above (floatConv,
   * floatConvSigns, binaryConvFloat, binaryConvSigns, packSigns, maxPoolSigns, sparseGemm): a
   * backend may return their outputs as views of its own memory, valid only until `f` returns, and
   * read such a view in place when it is passed back as an input; binaryConvFloat may then write
   * its sum into a `residual` that is such a view (and return it as `values`). The caller copies
   * out what it keeps. The reference backend just calls `f`.
   */
  stageScope<T>(f: () => T): T;
  /** binaryConv followed by packSigns of its accumulators: packed signs [n, outH, outW, wordsFor(o)]. */
  binaryConvSigns(x: Uint32Array, w: Uint32Array, s: ConvShape, t: SignThresholds): Uint32Array;
  /**
   * Signs of x (layout l) packed per pixel: [n, p, wordsFor(c)], bit 1 = −1, padding bits 0. With
   * `t` the sign is the per-channel compare of SignThresholds, else +1 iff v ≥ 0.
   */
  packSigns(x: Float32Array | Int32Array, l: SignLayout, t: SignThresholds | null): Uint32Array;
  /**
   * k x k max-pooling (stride k, no padding, floor) of packed signs x [n, h, w, words] into
   * [n, floor(h/k), floor(w/k), words]: with bit 1 = −1, the max of ±1 is the AND of the bits.
   */
  maxPoolSigns(x: Uint32Array, n: number, h: number, w: number, words: number, k: number): Uint32Array;
  /**
   * SmartDeal product on the factors (quant/smartdeal.ts): y [rows, outC] = x [rows, K]·(Ce·B)ᵀ
   * as z = B·x per input segment, then the kept power-of-two coefficients, never forming Ce·B.
   */
  smartdealGemm(f: SmartDealFactors, x: Float32Array, rows: number): Float32Array;
  /**
   * Sparse (CSR) weight rows times dense x [batch, k, p] (p contiguous): out[b, o, q] =
   * Σ_{j in row o} values[j]·x[b, cols[j], q], each product and sum rounded to float32 in order
   * of j; out [batch, rows, p]. Pruned layers (src/quant/sparse.ts).
   */
  sparseGemm(rowPtr: Int32Array, cols: Int32Array, values: Float32Array, x: Float32Array, rows: number, k: number, p: number, batch: number): Float32Array;
}

/**
 * Per-channel sign decision of packed activations: channel c is +1 iff (direction[c] > 0 ?
 * v ≥ threshold[c] : direction[c] < 0 ? v ≤ threshold[c] : threshold[c] ≥ 0), else −1 (bit 1).
 * Integer values take Int32 thresholds, float values Float32 ones.
 */
export interface SignThresholds {
  threshold: Int32Array | Float32Array;
  direction: Int8Array;
}

/** The int8 grid of a layer input: codes clamp(roundHalfAway(x / step), lo, hi), lo..hi within −128..127. */
export interface Int8Grid {
  step: number;
  lo: number;
  hi: number;
}

/** What an int8Conv or floatConv applies after its epilogue: a ReLU, then a max-pool of this window (stride = window; 0 or absent: none). */
export interface Int8Post {
  relu?: boolean;
  pool?: number;
}

/** One int8Conv of an int8Convs chain: its arguments after x. */
export interface Int8Step {
  w: Int8Array;
  s: ConvShape;
  g: Int8Grid;
  mul: Float32Array;
  bias: Float32Array;
  post?: Int8Post;
}

/** Values to sign-pack: n images of c channels x p pixels, as [n, c, p] (NCHW) or [n, p, c] (channelsLast). */
export interface SignLayout {
  n: number;
  c: number;
  p: number;
  channelsLast: boolean;
}

export type KernelName = keyof Kernels;

/**
 * Low-bit inference kernels in plain TypeScript (the portable path; wasm versions in
 * kernels/quant/ are used when built). Conventions: ±1 packed with bit 1 = −1 (value < 0), bit 0
 * = +1, 32 values per Uint32 word, padding bits 0 in both operands; a ±1 dot product over K
 * values is K − 2·popcount(a XOR b).
 *
 * @example
 * const a = packSignRows([1, -1, -1, 1], 1, 4), b = packSignRows([1, 1, -1, -1], 1, 4);
 * binaryGemm(a, b, 1, 1, 4)[0]; // 0 = 1·1 + (−1)·1 + (−1)(−1) + 1·(−1)
 */
import type { Int8Grid, Int8Post, Int8Step, SignLayout, SignThresholds } from '../backends/kernels.js';

/** Bits set in a 32-bit word (SWAR). */
export function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/**
 * Rounding used by every integer quantizer and by the integer kernels that must reproduce them:
 * half away from zero (symmetric, unlike Math.round's half up).
 */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** Words per row of `bits` bits. */
export const wordsFor = (bits: number): number => (bits + 31) >>> 5;

/** Sign bits of each row of a [rows, k] matrix: bit 1 where value < 0. Returns [rows, wordsFor(k)]. */
export function packSignRows(x: ArrayLike<number>, rows: number, k: number, out = new Uint32Array(rows * wordsFor(k))): Uint32Array {
  const kw = wordsFor(k);
  out.fill(0, 0, rows * kw);
  for (let r = 0; r < rows; r++) {
    const src = r * k, dst = r * kw;
    for (let i = 0; i < k; i++) if (x[src + i]! < 0) out[dst + (i >>> 5)] |= 1 << (i & 31);
  }
  return out;
}

/**
 * NCHW floats -> packed NHWC sign bits: for every pixel, wordsFor(C) words over its channels.
 * Returns [N, H, W, wordsFor(C)].
 */
export function packSignsNHWC(x: ArrayLike<number>, n: number, c: number, h: number, w: number, out = new Uint32Array(n * h * w * wordsFor(c))): Uint32Array {
  const cw = wordsFor(c), hw = h * w;
  out.fill(0, 0, n * hw * cw);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const src = (b * c + ch) * hw, word = ch >>> 5, bit = 1 << (ch & 31);
      for (let p = 0; p < hw; p++) if (x[src + p]! < 0) out[(b * hw + p) * cw + word] |= bit;
    }
  }
  return out;
}

/**
 * Binary GEMM: out[i, j] = k − 2·popcount(a_i XOR b_j) for packed rows a [m, kw] and b [n, kw]
 * (kw = wordsFor(k)), i.e. the ±1 dot product of rows of length k.
 */
export function binaryGemm(a: Uint32Array, b: Uint32Array, m: number, n: number, k: number, out = new Int32Array(m * n)): Int32Array {
  const kw = wordsFor(k);
  for (let i = 0; i < m; i++) {
    const ai = i * kw;
    for (let j = 0; j < n; j++) {
      const bj = j * kw;
      let pc = 0;
      for (let t = 0; t < kw; t++) pc += popcount32(a[ai + t]! ^ b[bj + t]!);
      out[i * n + j] = k - 2 * pc;
    }
  }
  return out;
}

/** Geometry of a square-kernel convolution (no dilation, no groups). */
export interface ConvShape {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  k: number;
  stride: number;
  pad: number;
}

export const convOut = (s: ConvShape): [number, number] => [
  Math.floor((s.h + 2 * s.pad - s.k) / s.stride) + 1,
  Math.floor((s.w + 2 * s.pad - s.k) / s.stride) + 1,
];

/**
 * Binary convolution on packed NHWC input x [N, H, W, cw] and packed OHWI weights
 * [O, k, k, cw] (cw = wordsFor(C)). Zero padding is not ±1: taps outside the image are skipped,
 * so each output is (C · inside taps) − 2·popcount over inside taps, exactly the float conv of
 * zero-padded ±1 input. Output: integer accumulators [N, OH, OW, O].
 */
export function binaryConv(x: Uint32Array, wts: Uint32Array, s: ConvShape, out?: Int32Array): Int32Array {
  const [oh, ow] = convOut(s);
  const cw = wordsFor(s.c), rowWords = s.k * s.k * cw;
  const acc = out ?? new Int32Array(s.n * oh * ow * s.o);
  for (let b = 0; b < s.n; b++) {
    for (let y = 0; y < oh; y++) {
      for (let xo = 0; xo < ow; xo++) {
        const base = ((b * oh + y) * ow + xo) * s.o;
        const y0 = y * s.stride - s.pad, x0 = xo * s.stride - s.pad;
        const i0 = Math.max(0, -y0), i1 = Math.min(s.k, s.h - y0), j0 = Math.max(0, -x0), j1 = Math.min(s.k, s.w - x0);
        const valid = Math.max(0, i1 - i0) * Math.max(0, j1 - j0) * s.c; // 0 for a pixel entirely in the padding (pad ≥ k)
        for (let o = 0; o < s.o; o++) {
          let pc = 0;
          for (let i = i0; i < i1; i++) {
            for (let j = j0; j < j1; j++) {
              const xi = ((b * s.h + y0 + i) * s.w + x0 + j) * cw;
              const wi = o * rowWords + (i * s.k + j) * cw;
              for (let t = 0; t < cw; t++) pc += popcount32(x[xi + t]! ^ wts[wi + t]!);
            }
          }
          acc[base + o] = valid - 2 * pc;
        }
      }
    }
  }
  return acc;
}

/**
 * Pixel-major integer accumulators [n, p, o] as float NCHW [n, o, p]: y = acc·mul[c] + bias[c]
 * computed in float64, rounded to float32.
 */
export function pixelMajorEpilogue(acc: Int32Array | Float32Array, n: number, p: number, o: number, mul: Float32Array, bias: Float32Array): Float32Array {
  const out = new Float32Array(n * o * p);
  for (let b = 0; b < n; b++) for (let q = 0; q < p; q++) for (let c = 0; c < o; c++) out[(b * o + c) * p + q] = acc[(b * p + q) * o + c]! * mul[c]! + bias[c]!;
  return out;
}

/**
 * binaryConv with a float epilogue: float NCHW values [n, o, outH, outW] = acc·mul + bias (+ residual,
 * float32 addition) and their plain signs, packed.
 */
export function binaryConvFloat(x: Uint32Array, wts: Uint32Array, s: ConvShape, mul: Float32Array, bias: Float32Array, residual?: Float32Array): { values: Float32Array; signs: Uint32Array } {
  const [oh, ow] = convOut(s);
  const y = pixelMajorEpilogue(binaryConv(x, wts, s), s.n, oh * ow, s.o, mul, bias);
  if (residual) for (let i = 0; i < y.length; i++) y[i] = y[i]! + residual[i]!;
  return { values: y, signs: packSigns(y, { n: s.n, c: s.o, p: oh * ow, channelsLast: false }, null) };
}

/** The reference backend's stage scope (backends/kernels.ts): outputs are plain arrays, nothing to keep or free. */
export function stageScope<T>(f: () => T): T {
  return f();
}

/** Whether channel c of value v is +1 under thresholds t (SignThresholds in backends/kernels.ts), or v ≥ 0 without. */
function isPlus(v: number, c: number, t: SignThresholds | null): boolean {
  if (!t) return v >= 0;
  const th = t.threshold[c]!, d = t.direction[c]!;
  return d > 0 ? v >= th : d < 0 ? v <= th : th >= 0;
}

/** Sign packing of [n, c, p] or [n, p, c] values into [n, p, wordsFor(c)] (bit 1 = −1). */
export function packSigns(x: Float32Array | Int32Array, l: SignLayout, t: SignThresholds | null): Uint32Array {
  const cw = wordsFor(l.c), out = new Uint32Array(l.n * l.p * cw);
  for (let b = 0; b < l.n; b++) {
    for (let c = 0; c < l.c; c++) {
      for (let q = 0; q < l.p; q++) {
        const v = x[l.channelsLast ? (b * l.p + q) * l.c + c : (b * l.c + c) * l.p + q]!;
        if (!isPlus(v, c, t)) out[(b * l.p + q) * cw + (c >>> 5)] |= 1 << (c & 31);
      }
    }
  }
  return out;
}

/** binaryConv whose accumulators are sign-packed by `t`: [N, OH, OW, wordsFor(O)]. */
export function binaryConvSigns(x: Uint32Array, wts: Uint32Array, s: ConvShape, t: SignThresholds): Uint32Array {
  const [oh, ow] = convOut(s);
  return packSigns(binaryConv(x, wts, s), { n: s.n, c: s.o, p: oh * ow, channelsLast: true }, t);
}

/** k x k max-pooling (stride k) of packed signs [n, h, w, words]: the AND of the bits (bit 1 = −1, so max = +1 when any is +1). */
export function maxPoolSigns(x: Uint32Array, n: number, h: number, w: number, words: number, k: number): Uint32Array {
  const oh = Math.floor(h / k), ow = Math.floor(w / k), out = new Uint32Array(n * oh * ow * words);
  for (let b = 0; b < n; b++) for (let y = 0; y < oh; y++) for (let xo = 0; xo < ow; xo++) {
    for (let t = 0; t < words; t++) {
      let m = 0xffffffff;
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) m &= x[((b * h + y * k + i) * w + xo * k + j) * words + t]!;
      out[((b * oh + y) * ow + xo) * words + t] = m >>> 0;
    }
  }
  return out;
}

/** OIHW ±1 weights (signs of `w`) packed OHWI per tap: [O, k, k, wordsFor(C)]. */
export function packWeightsOHWI(w: ArrayLike<number>, o: number, c: number, k: number): Uint32Array {
  const cw = wordsFor(c);
  const out = new Uint32Array(o * k * k * cw);
  for (let oc = 0; oc < o; oc++) {
    for (let ch = 0; ch < c; ch++) {
      for (let t = 0; t < k * k; t++) {
        if (w[(oc * c + ch) * k * k + t]! < 0) out[(oc * k * k + t) * cw + (ch >>> 5)] |= 1 << (ch & 31);
      }
    }
  }
  return out;
}

/** Ternary codes {−1, 0, +1} per row as two bit planes: [rows, 2, wordsFor(k)] (nonzero mask, then sign bit 1 = −1). */
export function packTernaryRows(t: ArrayLike<number>, rows: number, k: number): Uint32Array {
  const kw = wordsFor(k);
  const out = new Uint32Array(rows * 2 * kw);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < k; i++) {
      const v = t[r * k + i]!;
      if (v === 0) continue;
      out[r * 2 * kw + (i >>> 5)] |= 1 << (i & 31);
      if (v < 0) out[r * 2 * kw + kw + (i >>> 5)] |= 1 << (i & 31);
    }
  }
  return out;
}

/** The inverse of packTernaryRows (and, with `binary`, of packSignRows): values as floats. */
export function unpackRows(packed: Uint32Array, rows: number, k: number, format: 'binary' | 'ternary'): Float32Array {
  const kw = wordsFor(k), planes = format === 'ternary' ? 2 : 1;
  const out = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const base = r * planes * kw;
    for (let i = 0; i < k; i++) {
      const bit = (word: number) => (packed[base + word * kw + (i >>> 5)]! >>> (i & 31)) & 1;
      out[r * k + i] = format === 'binary' ? (bit(0) ? -1 : 1) : bit(0) ? (bit(1) ? -1 : 1) : 0;
    }
  }
  return out;
}

/**
 * Ternary × binary-activation dot via bit planes: Σ t_i·x_i = popcount(m) − 2·popcount(m ∧ (s XOR x)),
 * for a ternary row (mask m, sign s) and a packed ±1 row x.
 */
export function ternaryBinaryDot(row: Uint32Array, rowOffset: number, x: Uint32Array, xOffset: number, kw: number): number {
  let nz = 0, neg = 0;
  for (let t = 0; t < kw; t++) {
    const m = row[rowOffset + t]!;
    nz += popcount32(m);
    neg += popcount32(m & (row[rowOffset + kw + t]! ^ x[xOffset + t]!));
  }
  return nz - 2 * neg;
}

/** out[i, j] = Σ a[i, t]·b[j, t] (B given by rows), accumulated in the output's element type. */
function rowDotGemm<T extends Int32Array | Float32Array>(a: ArrayLike<number>, b: ArrayLike<number>, m: number, n: number, k: number, out: T): T {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t]! * b[j * k + t]!;
      out[i * n + j] = s;
    }
  }
  return out;
}

/** int8 GEMM with int32 accumulation: out[i, j] = Σ a[i, t]·b[j, t] (b rows = output channels). */
export function int8Gemm(a: Int8Array, b: Int8Array, m: number, n: number, k: number, out = new Int32Array(m * n)): Int32Array {
  return rowDotGemm(a, b, m, n, k, out);
}

/** f32 GEMM with B given by rows: out[i, j] = Σ a[i, t]·b[j, t]. */
export function floatGemm(a: Float32Array, b: Float32Array, m: number, n: number, k: number, out = new Float32Array(m * n)): Float32Array {
  return rowDotGemm(a, b, m, n, k, out);
}

/**
 * im2col of NCHW input into rows [N·OH·OW, C·k·k] in (c, i, j) order (matching OIHW weight rows);
 * taps outside the image are 0 (zero padding; for int8 the zero point is 0).
 */
export function im2col<T extends Float32Array | Int8Array>(x: T, s: ConvShape, out: T): T {
  const [oh, ow] = convOut(s);
  const kk = s.k * s.k, rowLen = s.c * kk;
  out.fill(0);
  for (let b = 0; b < s.n; b++) {
    for (let y = 0; y < oh; y++) {
      for (let xo = 0; xo < ow; xo++) {
        const row = ((b * oh + y) * ow + xo) * rowLen;
        for (let ch = 0; ch < s.c; ch++) {
          const plane = (b * s.c + ch) * s.h * s.w;
          for (let i = 0; i < s.k; i++) {
            const yy = y * s.stride - s.pad + i;
            if (yy < 0 || yy >= s.h) continue;
            for (let j = 0; j < s.k; j++) {
              const xx = xo * s.stride - s.pad + j;
              if (xx >= 0 && xx < s.w) out[row + ch * kk + i * s.k + j] = x[plane + yy * s.w + xx]!;
            }
          }
        }
      }
    }
  }
  return out;
}

/** Codes q = clamp(roundHalfAway(x / step), lo, hi) of float values (NaN: 0), as the int8 kernels quantize their input. */
export function quantizeCodes(x: ArrayLike<number>, g: Int8Grid, out = new Int8Array(x.length)): Int8Array {
  for (let i = 0; i < x.length; i++) out[i] = Math.min(g.hi, Math.max(g.lo, roundHalfAway(x[i]! / g.step)));
  return out;
}

/**
 * Max-pool of `planes` planes of h x w values with a k x k window, stride k (⌊h/k⌋ x ⌊w/k⌋ out):
 * the deploy runtime's pooling (2 x 2: Math.max of each row pair, then the larger).
 */
export function maxPoolPlanes(src: Float32Array, planes: number, h: number, w: number, k: number): Float32Array {
  const oh = Math.floor(h / k), ow = Math.floor(w / k);
  const out = new Float32Array(planes * oh * ow);
  for (let pl = 0; pl < planes; pl++) {
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
  return out;
}

/**
 * An int8 conv on float NCHW input (a dense layer is a 1x1 conv on [n, c, 1, 1]): input codes
 * from `quantizeCodes`, zero padding (code 0), OIHW int8 weight rows, int32 accumulation, then
 * y = acc·mul[o] + bias[o] (max(y, 0) with post.relu; then max-pooled by post.pool) as float32
 * NCHW [n, o, outH, outW].
 */
export function int8Conv(x: Float32Array, w: Int8Array, s: ConvShape, g: Int8Grid, mul: Float32Array, bias: Float32Array, post: Int8Post = {}): Float32Array {
  const [oh, ow] = convOut(s), rows = s.n * oh * ow, K = s.c * s.k * s.k;
  const cols = im2col(quantizeCodes(x, g), s, new Int8Array(rows * K));
  return convEpilogue(int8Gemm(w, cols, s.o, rows, K), s, (a, c) => a * mul[c]! + bias[c]!, post);
}

/**
 * A float conv on float NCHW input (a dense layer is a 1x1 conv on [n, c, 1, 1]): im2col, float32
 * GEMM on OIHW weight rows, y = f32(f32(acc·mul[o]) + bias[o]) (mul null: the sums), then
 * post.relu / post.pool as int8Conv: float32 NCHW [n, o, outH, outW].
 */
export function floatConv(x: Float32Array, w: Float32Array, s: ConvShape, mul: Float32Array | null, bias: Float32Array | null, post: Int8Post = {}): Float32Array {
  const [oh, ow] = convOut(s), rows = s.n * oh * ow, K = s.c * s.k * s.k;
  const acc = floatGemm(w, im2col(x, s, new Float32Array(rows * K)), s.o, rows, K);
  return convEpilogue(acc, s, mul ? (a, c) => Math.fround(Math.fround(a * mul[c]!) + bias![c]!) : (a) => a, post);
}

/** floatConv's raw sums sign-packed under float thresholds (packSigns of NCHW values): [n, outH, outW, wordsFor(o)]. */
export function floatConvSigns(x: Float32Array, w: Float32Array, s: ConvShape, t: SignThresholds): Uint32Array {
  const [oh, ow] = convOut(s);
  return packSigns(floatConv(x, w, s, null, null), { n: s.n, c: s.o, p: oh * ow, channelsLast: false }, t);
}

/**
 * Channel-major accumulators [o, n·outH·outW] through y(acc, channel), then max(y, 0) with
 * post.relu and a post.pool max-pool: float32 NCHW.
 */
function convEpilogue(acc: Int32Array | Float32Array, s: ConvShape, y: (a: number, c: number) => number, post: Int8Post): Float32Array {
  const [oh, ow] = convOut(s), p = oh * ow, rows = s.n * p;
  const out = new Float32Array(s.n * s.o * p);
  for (let b = 0; b < s.n; b++) {
    for (let c = 0; c < s.o; c++) {
      const src = c * rows + b * p, dst = (b * s.o + c) * p;
      for (let q = 0; q < p; q++) {
        const v = y(acc[src + q]!, c);
        out[dst + q] = post.relu ? (v > 0 ? v : 0) : v;
      }
    }
  }
  return post.pool ? maxPoolPlanes(out, s.n * s.o, oh, ow, post.pool) : out;
}

/** int8Conv steps in sequence, each on the previous step's output. */
export function int8Convs(x: Float32Array, steps: readonly Int8Step[]): Float32Array {
  return steps.reduce((h, t) => int8Conv(h, t.w, t.s, t.g, t.mul, t.bias, t.post), x);
}

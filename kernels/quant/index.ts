// Low-bit GEMM kernels for slimgrad's quantized inference (src/quant/wasm.ts loads them).
// All operands are row-major "B by rows": out[i, j] = dot(row i of A, row j of B), both rows
// K-contiguous, pointers are byte offsets into the imported arena memory, and rows are padded with
// zeros to 128 bits (binary: 4 u32 words; int8: 16 bytes; f32: 4 floats) so every kernel reads
// whole vectors. Register blocking: 2 rows of A x 4 rows of B per tile; edges fall back to 1 x 1.

import { hsum4 } from "./simd";
import { madd } from "../madd";

// ---------------------------------------------------------------------------------------------
// Binary: ±1 packed, bit 1 = −1; dot = k − 2·popcount(a XOR b). Padding bits are 0 in both.

// @ts-ignore: decorator
@inline function pc64(a: usize, b: usize): i64 {
  return popcnt<i64>(load<i64>(a) ^ load<i64>(b));
}

/** Binary GEMM with scalar i64.popcnt. words64 = row length in u64 words (even); k = true bit count. */
export function binaryGemmScalar(a: usize, b: usize, out: usize, m: i32, n: i32, words64: i32, k: i32): void {
  const row = <usize>words64 << 3;
  let i = 0;
  for (; i + 2 <= m; i += 2) {
    const a0 = a + <usize>i * row, a1 = a0 + row;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const b0 = b + <usize>j * row, b1 = b0 + row, b2 = b1 + row, b3 = b2 + row;
      let s00: i64 = 0, s01: i64 = 0, s02: i64 = 0, s03: i64 = 0;
      let s10: i64 = 0, s11: i64 = 0, s12: i64 = 0, s13: i64 = 0;
      for (let t: usize = 0; t < row; t += 8) {
        const x0 = load<i64>(a0 + t), x1 = load<i64>(a1 + t);
        const y0 = load<i64>(b0 + t), y1 = load<i64>(b1 + t), y2 = load<i64>(b2 + t), y3 = load<i64>(b3 + t);
        s00 += popcnt<i64>(x0 ^ y0); s01 += popcnt<i64>(x0 ^ y1); s02 += popcnt<i64>(x0 ^ y2); s03 += popcnt<i64>(x0 ^ y3);
        s10 += popcnt<i64>(x1 ^ y0); s11 += popcnt<i64>(x1 ^ y1); s12 += popcnt<i64>(x1 ^ y2); s13 += popcnt<i64>(x1 ^ y3);
      }
      const o0 = out + ((<usize>i * n + j) << 2), o1 = o0 + (<usize>n << 2);
      store<i32>(o0, k - 2 * <i32>s00); store<i32>(o0, k - 2 * <i32>s01, 4); store<i32>(o0, k - 2 * <i32>s02, 8); store<i32>(o0, k - 2 * <i32>s03, 12);
      store<i32>(o1, k - 2 * <i32>s10); store<i32>(o1, k - 2 * <i32>s11, 4); store<i32>(o1, k - 2 * <i32>s12, 8); store<i32>(o1, k - 2 * <i32>s13, 12);
    }
    for (; j < n; j++) {
      binaryDot1(a0, b + <usize>j * row, row, out + ((<usize>i * n + j) << 2), k);
      binaryDot1(a1, b + <usize>j * row, row, out + ((<usize>(i + 1) * n + j) << 2), k);
    }
  }
  for (; i < m; i++) for (let j = 0; j < n; j++) binaryDot1(a + <usize>i * row, b + <usize>j * row, row, out + ((<usize>i * n + j) << 2), k);
}

// @ts-ignore: decorator
@inline function binaryDot1(a: usize, b: usize, row: usize, out: usize, k: i32): void {
  let s: i64 = 0;
  for (let t: usize = 0; t < row; t += 8) s += pc64(a + t, b + t);
  store<i32>(out, k - 2 * <i32>s);
}

// @ts-ignore: decorator
@inline function widen(acc: v128): v128 {
  return i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(acc));
}

// @ts-ignore: decorator
@inline function hsum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

/**
 * Binary GEMM with v128.xor + i8x16.popcnt: per-byte counts (≤ 8) accumulate in u8 lanes for at
 * most 31 vectors (31·8 = 248 < 256), then widen pairwise to i32 (no u8/u16 overflow at any K).
 */
export function binaryGemmSimd(a: usize, b: usize, out: usize, m: i32, n: i32, words64: i32, k: i32): void {
  const row = <usize>words64 << 3;
  const vectors = words64 >> 1;
  for (let i = 0; i < m; i++) {
    const a0 = a + <usize>i * row;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const b0 = b + <usize>j * row, b1 = b0 + row, b2 = b1 + row, b3 = b2 + row;
      let t0 = i32x4.splat(0), t1 = i32x4.splat(0), t2 = i32x4.splat(0), t3 = i32x4.splat(0);
      let v = 0;
      while (v < vectors) {
        const end = min(vectors, v + 31);
        let c0 = i8x16.splat(0), c1 = i8x16.splat(0), c2 = i8x16.splat(0), c3 = i8x16.splat(0);
        for (; v < end; v++) {
          const off = <usize>v << 4;
          const x = v128.load(a0 + off);
          c0 = i8x16.add(c0, i8x16.popcnt(v128.xor(x, v128.load(b0 + off))));
          c1 = i8x16.add(c1, i8x16.popcnt(v128.xor(x, v128.load(b1 + off))));
          c2 = i8x16.add(c2, i8x16.popcnt(v128.xor(x, v128.load(b2 + off))));
          c3 = i8x16.add(c3, i8x16.popcnt(v128.xor(x, v128.load(b3 + off))));
        }
        t0 = i32x4.add(t0, widen(c0)); t1 = i32x4.add(t1, widen(c1)); t2 = i32x4.add(t2, widen(c2)); t3 = i32x4.add(t3, widen(c3));
      }
      const o = out + ((<usize>i * n + j) << 2);
      store<i32>(o, k - 2 * hsum(t0)); store<i32>(o, k - 2 * hsum(t1), 4); store<i32>(o, k - 2 * hsum(t2), 8); store<i32>(o, k - 2 * hsum(t3), 12);
    }
    for (; j < n; j++) binaryDot1(a0, b + <usize>j * row, row, out + ((<usize>i * n + j) << 2), k);
  }
}

// ---------------------------------------------------------------------------------------------
// int8: sign-extend to i16 and i32x4.dot_i16x8_s (8 MACs per instruction), exact i32 accumulation.

/** acc + x·y over 16 int8 lanes (sign-extended to i16 halves). */
// @ts-ignore: decorator
@inline function dot16(acc: v128, x: v128, y: v128): v128 {
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(x), i16x8.extend_low_i8x16_s(y));
  return i32x4.add(i32x4.add(acc, lo), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(x), i16x8.extend_high_i8x16_s(y)));
}

/** int8 GEMM: rowBytes = padded row length (multiple of 16). */
export function int8Gemm(a: usize, b: usize, out: usize, m: i32, n: i32, rowBytes: i32): void {
  const row = <usize>rowBytes;
  let i = 0;
  for (; i + 2 <= m; i += 2) {
    const a0 = a + <usize>i * row, a1 = a0 + row;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const b0 = b + <usize>j * row, b1 = b0 + row, b2 = b1 + row, b3 = b2 + row;
      let s00 = i32x4.splat(0), s01 = i32x4.splat(0), s02 = i32x4.splat(0), s03 = i32x4.splat(0);
      let s10 = i32x4.splat(0), s11 = i32x4.splat(0), s12 = i32x4.splat(0), s13 = i32x4.splat(0);
      for (let t: usize = 0; t < row; t += 16) {
        const xl0 = i16x8.extend_low_i8x16_s(v128.load(a0 + t)), xh0 = i16x8.extend_high_i8x16_s(v128.load(a0 + t));
        const xl1 = i16x8.extend_low_i8x16_s(v128.load(a1 + t)), xh1 = i16x8.extend_high_i8x16_s(v128.load(a1 + t));
        let y = v128.load(b0 + t);
        let yl = i16x8.extend_low_i8x16_s(y), yh = i16x8.extend_high_i8x16_s(y);
        s00 = i32x4.add(s00, i32x4.add(i32x4.dot_i16x8_s(xl0, yl), i32x4.dot_i16x8_s(xh0, yh)));
        s10 = i32x4.add(s10, i32x4.add(i32x4.dot_i16x8_s(xl1, yl), i32x4.dot_i16x8_s(xh1, yh)));
        y = v128.load(b1 + t); yl = i16x8.extend_low_i8x16_s(y); yh = i16x8.extend_high_i8x16_s(y);
        s01 = i32x4.add(s01, i32x4.add(i32x4.dot_i16x8_s(xl0, yl), i32x4.dot_i16x8_s(xh0, yh)));
        s11 = i32x4.add(s11, i32x4.add(i32x4.dot_i16x8_s(xl1, yl), i32x4.dot_i16x8_s(xh1, yh)));
        y = v128.load(b2 + t); yl = i16x8.extend_low_i8x16_s(y); yh = i16x8.extend_high_i8x16_s(y);
        s02 = i32x4.add(s02, i32x4.add(i32x4.dot_i16x8_s(xl0, yl), i32x4.dot_i16x8_s(xh0, yh)));
        s12 = i32x4.add(s12, i32x4.add(i32x4.dot_i16x8_s(xl1, yl), i32x4.dot_i16x8_s(xh1, yh)));
        y = v128.load(b3 + t); yl = i16x8.extend_low_i8x16_s(y); yh = i16x8.extend_high_i8x16_s(y);
        s03 = i32x4.add(s03, i32x4.add(i32x4.dot_i16x8_s(xl0, yl), i32x4.dot_i16x8_s(xh0, yh)));
        s13 = i32x4.add(s13, i32x4.add(i32x4.dot_i16x8_s(xl1, yl), i32x4.dot_i16x8_s(xh1, yh)));
      }
      const o0 = out + ((<usize>i * n + j) << 2), o1 = o0 + (<usize>n << 2);
      v128.store(o0, hsum4(s00, s01, s02, s03));
      v128.store(o1, hsum4(s10, s11, s12, s13));
    }
    for (; j < n; j++) {
      int8Dot1(a0, b + <usize>j * row, row, out + ((<usize>i * n + j) << 2));
      int8Dot1(a1, b + <usize>j * row, row, out + ((<usize>(i + 1) * n + j) << 2));
    }
  }
  for (; i < m; i++) for (let j = 0; j < n; j++) int8Dot1(a + <usize>i * row, b + <usize>j * row, row, out + ((<usize>i * n + j) << 2));
}

// @ts-ignore: decorator
@inline function int8Dot1(a: usize, b: usize, row: usize, out: usize): void {
  let s = i32x4.splat(0);
  for (let t: usize = 0; t < row; t += 16) s = dot16(s, v128.load(a + t), v128.load(b + t));
  store<i32>(out, hsum(s));
}

// ---------------------------------------------------------------------------------------------
// f32 baseline with the same layout and blocking (2 x 4 tiles of f32x4 accumulators), so the
// speed-ups above compare instruction throughput at equal effort. rowFloats: multiple of 4.

// @ts-ignore: decorator
@inline function fsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

export function f32Gemm(a: usize, b: usize, out: usize, m: i32, n: i32, rowFloats: i32): void {
  const row = <usize>rowFloats << 2;
  let i = 0;
  for (; i + 2 <= m; i += 2) {
    const a0 = a + <usize>i * row, a1 = a0 + row;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const b0 = b + <usize>j * row, b1 = b0 + row, b2 = b1 + row, b3 = b2 + row;
      let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s02 = f32x4.splat(0), s03 = f32x4.splat(0);
      let s10 = f32x4.splat(0), s11 = f32x4.splat(0), s12 = f32x4.splat(0), s13 = f32x4.splat(0);
      for (let t: usize = 0; t < row; t += 16) {
        const x0 = v128.load(a0 + t), x1 = v128.load(a1 + t);
        let y = v128.load(b0 + t);
        s00 = madd(x0, y, s00); s10 = madd(x1, y, s10);
        y = v128.load(b1 + t);
        s01 = madd(x0, y, s01); s11 = madd(x1, y, s11);
        y = v128.load(b2 + t);
        s02 = madd(x0, y, s02); s12 = madd(x1, y, s12);
        y = v128.load(b3 + t);
        s03 = madd(x0, y, s03); s13 = madd(x1, y, s13);
      }
      const o0 = out + ((<usize>i * n + j) << 2), o1 = o0 + (<usize>n << 2);
      store<f32>(o0, fsum(s00)); store<f32>(o0, fsum(s01), 4); store<f32>(o0, fsum(s02), 8); store<f32>(o0, fsum(s03), 12);
      store<f32>(o1, fsum(s10)); store<f32>(o1, fsum(s11), 4); store<f32>(o1, fsum(s12), 8); store<f32>(o1, fsum(s13), 12);
    }
    for (; j < n; j++) {
      f32Dot1(a0, b + <usize>j * row, row, out + ((<usize>i * n + j) << 2));
      f32Dot1(a1, b + <usize>j * row, row, out + ((<usize>(i + 1) * n + j) << 2));
    }
  }
  for (; i < m; i++) {
    // A last row (a dense layer at batch 1): 1 x 4 tiles share each load of A.
    const a0 = a + <usize>i * row;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const b0 = b + <usize>j * row, b1 = b0 + row, b2 = b1 + row, b3 = b2 + row;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      for (let t: usize = 0; t < row; t += 16) {
        const x = v128.load(a0 + t);
        s0 = madd(x, v128.load(b0 + t), s0);
        s1 = madd(x, v128.load(b1 + t), s1);
        s2 = madd(x, v128.load(b2 + t), s2);
        s3 = madd(x, v128.load(b3 + t), s3);
      }
      const o = out + ((<usize>i * n + j) << 2);
      store<f32>(o, fsum(s0)); store<f32>(o, fsum(s1), 4); store<f32>(o, fsum(s2), 8); store<f32>(o, fsum(s3), 12);
    }
    for (; j < n; j++) f32Dot1(a0, b + <usize>j * row, row, out + ((<usize>i * n + j) << 2));
  }
}

// @ts-ignore: decorator
@inline function f32Dot1(a: usize, b: usize, row: usize, out: usize): void {
  let s = f32x4.splat(0);
  for (let t: usize = 0; t < row; t += 16) s = madd(v128.load(a + t), v128.load(b + t), s);
  store<f32>(out, fsum(s));
}
export * from "./packed";

// ---------------------------------------------------------------------------------------------
// SmartDeal (src/quant/smartdeal.ts), segment = rank = 4: the product on the factors.

/**
 * out[n, o] = Σ over o's kept segments e of dot(coef_e, z[kg_e]), z[g] = Σ_j x[n, 4g + j]·bc_j:
 * x rows [rows, G·4] zero-padded, bc the basis columns (bc_j = B[:, j], 4 x v128), coef [kept, 4]
 * f32 (powers of two), ko / kg the output channel (ascending) and segment of each kept row (i32),
 * z scratch [G x v128], out [rows, outC] f32 (channels without kept rows get 0).
 */
export function smartdealGemm4(x: usize, rows: i32, G: i32, bc: usize, coef: usize, ko: usize, kg: usize, kept: i32, z: usize, out: usize, outC: i32): void {
  const b0 = v128.load(bc), b1 = v128.load(bc, 16), b2 = v128.load(bc, 32), b3 = v128.load(bc, 48);
  const rowBytes = <usize>G << 4;
  for (let n = 0; n < rows; n++) {
    const xr = x + <usize>n * rowBytes;
    for (let g: usize = 0; g < <usize>G; g++) {
      const xs = v128.load(xr + (g << 4));
      let zz = f32x4.mul(b0, f32x4.splat(f32x4.extract_lane(xs, 0)));
      zz = f32x4.add(zz, f32x4.mul(b1, f32x4.splat(f32x4.extract_lane(xs, 1))));
      zz = f32x4.add(zz, f32x4.mul(b2, f32x4.splat(f32x4.extract_lane(xs, 2))));
      zz = f32x4.add(zz, f32x4.mul(b3, f32x4.splat(f32x4.extract_lane(xs, 3))));
      v128.store(z + (g << 4), zz);
    }
    const orow = out + ((<usize>n * <usize>outC) << 2);
    memory.fill(orow, 0, <usize>outC << 2);
    let e = 0;
    while (e < kept) {
      const o = load<i32>(ko + (<usize>e << 2));
      let acc = f32x4.splat(0);
      while (e < kept && load<i32>(ko + (<usize>e << 2)) == o) {
        acc = f32x4.add(acc, f32x4.mul(v128.load(coef + (<usize>e << 4)), v128.load(z + (<usize>load<i32>(kg + (<usize>e << 2)) << 4))));
        e++;
      }
      store<f32>(orow + (<usize>o << 2), fsum(acc));
    }
  }
}
export * from "./sparse";
export * from "./float";

// f32 GEMM: C = op(A) op(B) (+ C), row-major, any transpose variant.
//
// BLIS/XNNPACK structure: op(B) is packed per (column block, k block) into panels of NR columns
// (kc rows of NR contiguous floats), op(A) per (row block, k block) into slivers of MR rows (kc
// groups of MR contiguous floats). Packing absorbs the transposes, so every variant reaches the
// same MR x NR register-tiled microkernel, and zero-padding the last panel/sliver makes edges free
// inside the k loop (only the store is masked). All pointers are byte offsets into the imported
// arena memory; scratch for the packed blocks is owned by the caller (one block per thread).

import { madd } from './madd';

export const MR: i32 = 4;
export const NR: i32 = 8;
/** k block: a packed B panel (KC x NR floats, 8 KiB) stays in L1 across a row block. */
export const KC: i32 = 256;
/** Row block: a packed A block (MC x KC floats, 128 KiB) stays in L2. */
export const MC: i32 = 128;
/** Column block: a packed B block (KC x NC floats, 1 MiB). */
export const NC: i32 = 1024;

/** Bytes of scratch one thread needs: packed A block, packed B block, one edge tile. */
export function gemmScratchBytes(): i32 {
  return (MC * KC + KC * NC + MR * NR) * 4;
}

const TRANS_A: i32 = 1;
const TRANS_B: i32 = 2;
const ACCUMULATE: i32 = 4;

/**
 * Reads a 4x4 block (4 rows of 4 floats, rows `ld` bytes apart, at src) and writes its transpose
 * (4 rows of 4 floats, `dstStride` bytes apart, at dst): packs operands stored along k.
 */
// @ts-ignore: decorator
@inline function transpose4x4(src: usize, ld: usize, dst: usize, dstStride: usize): void {
  const r0 = v128.load(src), r1 = v128.load(src + ld), r2 = v128.load(src + 2 * ld), r3 = v128.load(src + 3 * ld);
  const t0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = i32x4.shuffle(r2, r3, 0, 4, 1, 5);
  const t2 = i32x4.shuffle(r0, r1, 2, 6, 3, 7), t3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(dst, i32x4.shuffle(t0, t1, 0, 1, 4, 5));
  v128.store(dst + dstStride, i32x4.shuffle(t0, t1, 2, 3, 6, 7));
  v128.store(dst + 2 * dstStride, i32x4.shuffle(t2, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * dstStride, i32x4.shuffle(t2, t3, 2, 3, 6, 7));
}

// @ts-ignore: decorator
@inline function packB(b: usize, transB: bool, k: i32, n: i32, pc: i32, kc: i32, jc: i32, nc: i32, dst: usize): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    const col = jc + jr;
    if (!transB && cols == NR) {
      // Rows of B are contiguous: copy 8 floats per k.
      let src = b + ((<usize>pc * n + col) << 2);
      const step = <usize>n << 2;
      for (let p = 0; p < kc; p++) {
        if (ASC_FEATURE_SIMD) {
          v128.store(dst, v128.load(src));
          v128.store(dst, v128.load(src, 16), 16);
        } else {
          memory.copy(dst, src, 32);
        }
        src += step;
        dst += NR << 2;
      }
    } else if (ASC_FEATURE_SIMD && transB && cols == NR) {
      // Columns of op(B) are rows of B, contiguous along k: transpose 4x4 blocks.
      const ld = <usize>k << 2;
      const src = b + ((<usize>col * k + pc) << 2);
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const d = dst + (<usize>p * NR << 2);
        transpose4x4(src + (<usize>p << 2), ld, d, NR << 2);
        transpose4x4(src + 4 * ld + (<usize>p << 2), ld, d + 16, NR << 2);
      }
      for (; p < kc; p++) {
        for (let t = 0; t < NR; t++) store<f32>(dst + ((<usize>p * NR + t) << 2), load<f32>(src + <usize>t * ld + (<usize>p << 2)));
      }
      dst += <usize>kc * NR << 2;
    } else {
      for (let p = 0; p < kc; p++) {
        for (let t = 0; t < NR; t++) {
          let v: f32 = 0;
          if (t < cols) {
            const kk = pc + p, j = col + t;
            v = load<f32>(b + ((transB ? <usize>j * k + kk : <usize>kk * n + j) << 2));
          }
          store<f32>(dst + (t << 2), v);
        }
        dst += NR << 2;
      }
    }
  }
}

// @ts-ignore: decorator
@inline function packA(a: usize, transA: bool, m: i32, k: i32, ic: i32, mc: i32, pc: i32, kc: i32, dst: usize): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const rows = min(MR, mc - ir);
    const row = ic + ir;
    if (transA && rows == MR) {
      // Columns of A^T are contiguous: copy MR floats per k.
      let src = a + ((<usize>pc * m + row) << 2);
      const step = <usize>m << 2;
      for (let p = 0; p < kc; p++) {
        if (ASC_FEATURE_SIMD) v128.store(dst, v128.load(src));
        else memory.copy(dst, src, MR << 2);
        src += step;
        dst += MR << 2;
      }
    } else if (ASC_FEATURE_SIMD && !transA && rows == MR) {
      // Rows of A are contiguous along k: transpose 4x4 blocks.
      const ld = <usize>k << 2;
      const src = a + ((<usize>row * k + pc) << 2);
      let p = 0;
      for (; p + 4 <= kc; p += 4) transpose4x4(src + (<usize>p << 2), ld, dst + (<usize>p * MR << 2), MR << 2);
      for (; p < kc; p++) {
        for (let r = 0; r < MR; r++) store<f32>(dst + ((<usize>p * MR + r) << 2), load<f32>(src + <usize>r * ld + (<usize>p << 2)));
      }
      dst += <usize>kc * MR << 2;
    } else {
      for (let r = 0; r < MR; r++) {
        let d = dst + (r << 2);
        if (r < rows) {
          const i = row + r;
          for (let p = 0; p < kc; p++) {
            const kk = pc + p;
            store<f32>(d, load<f32>(a + ((transA ? <usize>kk * m + i : <usize>i * k + kk) << 2)));
            d += MR << 2;
          }
        } else {
          for (let p = 0; p < kc; p++) {
            store<f32>(d, 0);
            d += MR << 2;
          }
        }
      }
      dst += <usize>kc * (MR << 2);
    }
  }
}

/**
 * C tile (mr x nr at c, row stride ldc bytes) = (add ? C : 0) + Apanel * Bpanel over kc.
 * Full tiles store straight from registers; edge tiles go through `tile` and are copied.
 */
function microkernel(kc: i32, ap: usize, bp: usize, c: usize, ldc: usize, mr: i32, nr: i32, add: bool, tile: usize): void {
  if (ASC_FEATURE_SIMD) {
    let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
    let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
    let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
    let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
    for (let p = 0; p < kc; p++) {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      let a = v128.load32_splat(ap);
      c00 = madd(a, b0, c00);
      c01 = madd(a, b1, c01);
      a = v128.load32_splat(ap, 4);
      c10 = madd(a, b0, c10);
      c11 = madd(a, b1, c11);
      a = v128.load32_splat(ap, 8);
      c20 = madd(a, b0, c20);
      c21 = madd(a, b1, c21);
      a = v128.load32_splat(ap, 12);
      c30 = madd(a, b0, c30);
      c31 = madd(a, b1, c31);
      ap += MR << 2;
      bp += NR << 2;
    }
    if (mr == MR && nr == NR) {
      if (add) {
        v128.store(c, f32x4.add(v128.load(c), c00));
        v128.store(c, f32x4.add(v128.load(c, 16), c01), 16);
        c += ldc;
        v128.store(c, f32x4.add(v128.load(c), c10));
        v128.store(c, f32x4.add(v128.load(c, 16), c11), 16);
        c += ldc;
        v128.store(c, f32x4.add(v128.load(c), c20));
        v128.store(c, f32x4.add(v128.load(c, 16), c21), 16);
        c += ldc;
        v128.store(c, f32x4.add(v128.load(c), c30));
        v128.store(c, f32x4.add(v128.load(c, 16), c31), 16);
      } else {
        v128.store(c, c00);
        v128.store(c, c01, 16);
        c += ldc;
        v128.store(c, c10);
        v128.store(c, c11, 16);
        c += ldc;
        v128.store(c, c20);
        v128.store(c, c21, 16);
        c += ldc;
        v128.store(c, c30);
        v128.store(c, c31, 16);
      }
      return;
    }
    v128.store(tile, c00);
    v128.store(tile, c01, 16);
    v128.store(tile, c10, 32);
    v128.store(tile, c11, 48);
    v128.store(tile, c20, 64);
    v128.store(tile, c21, 80);
    v128.store(tile, c30, 96);
    v128.store(tile, c31, 112);
  } else {
    // Scalar build: one row of 8 accumulators at a time.
    for (let r = 0; r < MR; r++) {
      let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0, s4: f32 = 0, s5: f32 = 0, s6: f32 = 0, s7: f32 = 0;
      let a = ap + (r << 2), b = bp;
      for (let p = 0; p < kc; p++) {
        const x = load<f32>(a);
        s0 += x * load<f32>(b);
        s1 += x * load<f32>(b, 4);
        s2 += x * load<f32>(b, 8);
        s3 += x * load<f32>(b, 12);
        s4 += x * load<f32>(b, 16);
        s5 += x * load<f32>(b, 20);
        s6 += x * load<f32>(b, 24);
        s7 += x * load<f32>(b, 28);
        a += MR << 2;
        b += NR << 2;
      }
      const t = tile + (<usize>r * NR << 2);
      store<f32>(t, s0);
      store<f32>(t, s1, 4);
      store<f32>(t, s2, 8);
      store<f32>(t, s3, 12);
      store<f32>(t, s4, 16);
      store<f32>(t, s5, 20);
      store<f32>(t, s6, 24);
      store<f32>(t, s7, 28);
    }
  }
  for (let r = 0; r < mr; r++) {
    const t = tile + (<usize>r * NR << 2);
    const row = c + <usize>r * ldc;
    for (let j = 0; j < nr; j++) {
      const v = load<f32>(t + (j << 2));
      const dst = row + (j << 2);
      store<f32>(dst, add ? load<f32>(dst) + v : v);
    }
  }
}

/**
 * One matrix: rows [i0, i1) x columns [j0, j1) of C (m x n at c) from A and B.
 * `scratch` holds gemmScratchBytes() bytes, used by this call only.
 */
export function gemmBlock(
  a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, flags: i32,
  i0: i32, i1: i32, j0: i32, j1: i32, scratch: usize,
): void {
  const transA = (flags & TRANS_A) != 0, transB = (flags & TRANS_B) != 0, accumulate = (flags & ACCUMULATE) != 0;
  const ldc = <usize>n << 2;
  if (k == 0) {
    if (!accumulate) {
      for (let i = i0; i < i1; i++) memory.fill(c + ((<usize>i * n + j0) << 2), 0, <usize>(j1 - j0) << 2);
    }
    return;
  }
  const packedA = scratch;
  const packedB = packedA + (<usize>MC * KC << 2);
  const tile = packedB + (<usize>KC * NC << 2);
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min(KC, k - pc);
      packB(b, transB, k, n, pc, kc, jc, nc, packedB);
      const add = accumulate || pc > 0;
      for (let ic = i0; ic < i1; ic += MC) {
        const mc = min(MC, i1 - ic);
        packA(a, transA, m, k, ic, mc, pc, kc, packedA);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const bp = packedB + (<usize>jr * kc << 2);
          for (let ir = 0; ir < mc; ir += MR) {
            const cp = c + ((<usize>(ic + ir) * n + jc + jr) << 2);
            microkernel(kc, packedA + (<usize>ir * kc << 2), bp, cp, ldc, min(MR, mc - ir), nr, add, tile);
          }
        }
      }
    }
  }
}

/**
 * Matrices [b0, b1) of a batched GEMM, each restricted to rows [i0, i1) x columns [j0, j1).
 * aStride/bStride are element strides between batch members (0 = broadcast).
 */
export function gemm(
  a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, aStride: i32, bStride: i32, flags: i32,
  b0: i32, b1: i32, i0: i32, i1: i32, j0: i32, j1: i32, scratch: usize,
): void {
  for (let bi = b0; bi < b1; bi++) {
    gemmBlock(
      a + (<usize>bi * aStride << 2), b + (<usize>bi * bStride << 2), c + (<usize>bi * m * n << 2),
      m, n, k, flags, i0, i1, j0, j1, scratch,
    );
  }
}

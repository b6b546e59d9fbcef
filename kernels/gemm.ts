// f32 GEMM: C = op(A) op(B) (+ C), row-major, any transpose variant.
//
// BLIS/XNNPACK structure: op(B) is packed per (column block, k block) into panels of NR columns
// (kc rows of NR contiguous floats), op(A) per (row block, k block) into slivers of MR rows (kc
// groups of MR contiguous floats). Packing absorbs the transposes, so every variant reaches the
// same MR x NR register-tiled microkernel, and zero-padding the last panel/sliver makes edges free
// inside the k loop (only the store is masked). All pointers are byte offsets into the imported
// arena memory; scratch for the packed blocks is owned by the caller (one block per thread).

import { madd } from './madd';
import { copyFloats, copyStrided, endInside, firstInside, zeroFloats } from './rows';

export const MR: i32 = 4;
export const NR: i32 = 8;
/** k block: a packed B panel (KC x NR floats, 8 KiB) stays in L1 across a row block. */
export const KC: i32 = 256;
/** Row block: a packed A block (MC x KC floats, 128 KiB) stays in L2. */
export const MC: i32 = 128;
/** Column block: a packed B block (KC x NC floats, 1 MiB). */
export const NC: i32 = 1024;

/**
 * Bytes of scratch one thread needs: packed A block, packed B block, one edge tile, then for
 * convGemm NR rows of KC gathered columns (weight gradient) and packColumns' column table.
 */
export function gemmScratchBytes(): i32 {
  return (MC * KC + KC * NC + MR * NR + NR * KC) * 4 + TABLE_BYTES + (TABLE_ROWS + PAD_FLOATS) * 4;
}

/** Rows of the columns (cg*kh*kw) up to which a forward convGemm can use the padded image (its row table's size). */
const TABLE_ROWS: i32 = 4096;
/** Floats of the padded image buffer (256 KiB): cg*(h + pads)*(w + pads) up to this pads the image. */
const PAD_FLOATS: i32 = 65536;

const TRANS_A: i32 = 1;
const TRANS_B: i32 = 2;
const ACCUMULATE: i32 = 4;
/** convGemm: the window read backwards (rows (ch, i, j) of the columns read tap (kh-1-i, kw-1-j)). */
const FLIP: i32 = 8;

// Where gemmBlock's B operand comes from: a matrix, or (convGemm) the im2col columns of one image
// [cg*kh*kw, outH*outW] (SOURCE_COLUMNS) or their transpose (SOURCE_COLUMNS_T), packed straight
// from the NCHW image so that the columns are never written out. The image geometry is set per
// convGemm call (globals are per instance, so per thread).
const SOURCE_MATRIX: i32 = 0;
const SOURCE_COLUMNS: i32 = 1;
const SOURCE_COLUMNS_T: i32 = 2;
let imgH: i32 = 0, imgW: i32 = 0, winH: i32 = 0, winW: i32 = 0, strideH: i32 = 1, strideW: i32 = 1, outW: i32 = 0;
/** Input row/column of window tap (i, j) at output (0, 0): offY0 + i*stepY, offX0 + j*stepX. */
let offY0: i32 = 0, stepY: i32 = 0, offX0: i32 = 0, stepX: i32 = 0;
/** Byte range of the current image (all its channels): vector loads of packColumns stay inside it. */
let imgLo: usize = 0, imgHi: usize = 0;
/**
 * convGemm with SIMD: each image's channels are first copied into a zero-bordered buffer
 * in the scratch (`padBase`, rows of `padRow` bytes; the image itself when the window needs no
 * border), so that every tap of every output pixel is inside it, and row r of the columns at output pixel (oy, ox) is at padBase + oy*strideH*padRow +
 * ox*strideW*4 + rowTable[r]: a panel row is then one or two vector loads, no bounds, no masks.
 */
let padded = false, padBase: usize = 0, padRow: usize = 0, rowTable: usize = 0;

/**
 * Reads a 4x4 block (4 rows of 4 floats, rows `ld` bytes apart, at src) and writes its transpose
 * (4 rows of 4 floats, `dstStride` bytes apart, at dst): packs operands stored along k.
 */
// @ts-ignore: decorator
@inline function transpose4x4(src: usize, ld: usize, dst: usize, dstStride: usize): void {
  storeTransposed(v128.load(src), v128.load(src + ld), v128.load(src + 2 * ld), v128.load(src + 3 * ld), dst, dstStride);
}

/** Writes the transpose of the 4x4 block with rows r0..r3 as 4 rows of 4 floats, `dstStride` bytes apart, at dst. */
// @ts-ignore: decorator
@inline function storeTransposed(r0: v128, r1: v128, r2: v128, r3: v128, dst: usize, dstStride: usize): void {
  const t0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = i32x4.shuffle(r2, r3, 0, 4, 1, 5);
  const t2 = i32x4.shuffle(r0, r1, 2, 6, 3, 7), t3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(dst, i32x4.shuffle(t0, t1, 0, 1, 4, 5));
  v128.store(dst + dstStride, i32x4.shuffle(t0, t1, 2, 3, 6, 7));
  v128.store(dst + 2 * dstStride, i32x4.shuffle(t2, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * dstStride, i32x4.shuffle(t2, t3, 2, 3, 6, 7));
}

/** One B panel (kc x NR at dst) from NR rows of kc floats (rows `ld` bytes apart, at src): 4x4 transposes. */
// @ts-ignore: decorator
@inline function packTransposed(src: usize, ld: usize, kc: i32, dst: usize): void {
  let p = 0;
  if (ASC_FEATURE_SIMD) {
    for (; p + 4 <= kc; p += 4) {
      const d = dst + (<usize>p * NR << 2);
      transpose4x4(src + (<usize>p << 2), ld, d, NR << 2);
      transpose4x4(src + 4 * ld + (<usize>p << 2), ld, d + 16, NR << 2);
    }
  }
  for (; p < kc; p++) {
    for (let t = 0; t < NR; t++) store<f32>(dst + ((<usize>p * NR + t) << 2), load<f32>(src + <usize>t * ld + (<usize>p << 2)));
  }
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
      // Columns of op(B) are rows of B, contiguous along k.
      packTransposed(b + ((<usize>col * k + pc) << 2), <usize>k << 2, kc, dst);
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

/** Window columns the vector path of packColumns handles (its per-column table in the scratch). */
const TABLE_COLUMNS: i32 = 64;
/** Byte offset of the lane masks in the table (after TABLE_COLUMNS [lo, hi) pairs). */
const MASKS: usize = <usize>TABLE_COLUMNS << 3;
const TABLE_BYTES: i32 = TABLE_COLUMNS * (8 + 32);

/**
 * Per window column j: the output columns [lo, hi) whose input column lies inside the image, at
 * table + 8j (i32 pairs). Set once per convGemm call.
 */
function setColumnRanges(table: usize): void {
  for (let j = 0; j < min(winW, TABLE_COLUMNS); j++) {
    const offX = offX0 + j * stepX;
    const lo = min(outW, firstInside(offX, strideW));
    store<i32>(table + (<usize>j << 3), lo);
    store<i32>(table + (<usize>j << 3), max(lo, min(outW, endInside(imgW, offX, strideW))), 4);
  }
}

/**
 * NR floats of one tap's column row at d: output pixels q.. (output row oy, column ox on), 0 over
 * padding and past pixel `end`, element by element.
 */
// @ts-ignore: decorator
@inline function packPixels(base: usize, offY: i32, offX: i32, oy: i32, ox: i32, q: i32, end: i32, d: usize): void {
  let yy = oy, xx = ox;
  for (let t = 0; t < NR; t++) {
    let v: f32 = 0;
    const iy = yy * strideH + offY, ix = xx * strideW + offX;
    if (q + t < end && iy >= 0 && iy < imgH && ix >= 0 && ix < imgW) v = load<f32>(base + ((<usize>iy * imgW + ix) << 2));
    store<f32>(d + (<usize>t << 2), v);
    if (++xx == outW) {
      xx = 0;
      yy++;
    }
  }
}

/** One panel of rows [pc, pc+kc) (NR pixels from q: output row oy, column ox on) at d, element by element. */
function packPanelPixels(x: usize, pc: i32, kc: i32, oy: i32, ox: i32, q: i32, end: i32, d: usize): void {
  const taps = winH * winW, plane = <usize>imgH * imgW << 2;
  let ch = pc / taps, i = (pc - ch * taps) / winW, j = pc - ch * taps - i * winW;
  let base = x + <usize>ch * plane;
  for (let p = 0; p < kc; p++) {
    packPixels(base, offY0 + i * stepY, offX0 + j * stepX, oy, ox, q, end, d);
    d += NR << 2;
    if (++j == winW) {
      j = 0;
      if (++i == winH) {
        i = 0;
        ch++;
        base += plane;
      }
    }
  }
}

/**
 * B panels of the columns of one image (SOURCE_COLUMNS): rows [pc, pc+kc) (window taps (ch, i, j)
 * of the channels at x) by output pixels [jc, jc+nc). A panel is NR consecutive pixels; when they
 * lie in one output row (and the stride is 1 or 2), each of its rows is one or two vector loads
 * from the image row, the lanes over padding masked to 0 by per-column masks set up once per panel
 * (masked loads stay inside the image, [imgLo, imgHi)); panels across output rows, short rows and
 * other strides go element by element.
 */
function packColumns(x: usize, pc: i32, kc: i32, jc: i32, nc: i32, dst: usize, table: usize): void {
  const taps = winH * winW, plane = <usize>imgH * imgW << 2, end = jc + nc;
  const ch0 = pc / taps, i0 = (pc - ch0 * taps) / winW, j0 = pc - ch0 * taps - i0 * winW;
  const vector = ASC_FEATURE_SIMD && strideW <= 2 && winW <= TABLE_COLUMNS;
  for (let q = jc; q < end; q += NR, dst += <usize>kc * NR << 2) {
    const oy = q / outW, ox = q - oy * outW;
    let ch = ch0, i = i0, j = j0, d = dst;
    let base = x + <usize>ch * plane;
    if (vector && q + NR <= end && ox + NR <= outW) {
      const at = i32x4.add(i32x4.splat(ox), i32x4(0, 1, 2, 3)), at4 = i32x4.add(at, i32x4.splat(4));
      let inside = true; // every lane of every tap inside the image's columns
      for (let jj = 0; jj < winW; jj++) {
        const lo = load<i32>(table + (<usize>jj << 3)), hi = load<i32>(table + (<usize>jj << 3), 4);
        inside = inside && ox >= lo && ox + NR <= hi;
        const loV = i32x4.splat(lo), hiV = i32x4.splat(hi), m = table + MASKS + (<usize>jj << 5);
        v128.store(m, v128.and(i32x4.ge_s(at, loV), i32x4.lt_s(at, hiV)));
        v128.store(m, v128.and(i32x4.ge_s(at4, loV), i32x4.lt_s(at4, hiV)), 16);
      }
      const col0 = ox * strideW + offX0, y0 = oy * strideH + offY0;
      let y = y0 + i * stepY;
      for (let p = 0; p < kc; p++) {
        if (y < 0 || y >= imgH) {
          v128.store(d, i32x4.splat(0));
          v128.store(d, i32x4.splat(0), 16);
        } else {
          const col = col0 + j * stepX, s = <usize>(<isize>base + ((y * imgW + col) << 2));
          if (inside && strideW == 1) {
            v128.store(d, v128.load(s));
            v128.store(d, v128.load(s, 16), 16);
          } else if (s >= imgLo && s + (<usize>strideW << 5) <= imgHi) {
            let v0 = v128.load(s), v1 = v128.load(s, 16);
            if (strideW == 2) {
              const v2 = v128.load(s, 32), v3 = v128.load(s, 48);
              v0 = i32x4.shuffle(v0, v1, 0, 2, 4, 6);
              v1 = i32x4.shuffle(v2, v3, 0, 2, 4, 6);
            }
            const m = table + MASKS + (<usize>j << 5);
            v128.store(d, v128.and(v0, v128.load(m)));
            v128.store(d, v128.and(v1, v128.load(m, 16)), 16);
          } else {
            packPixels(base, offY0 + i * stepY, col - ox * strideW, oy, ox, q, end, d);
          }
        }
        d += NR << 2;
        if (++j == winW) {
          j = 0;
          y += stepY;
          if (++i == winH) {
            i = 0;
            y = y0;
            ch++;
            base += plane;
          }
        }
      }
    } else packPanelPixels(x, pc, kc, oy, ox, q, end, dst);
  }
}

/** 4 floats of an image row at s, `stride` (1 or 2) elements apart. */
// @ts-ignore: decorator
@inline function lanes4(s: usize, stride: i32): v128 {
  if (stride == 1) return v128.load(s);
  return i32x4.shuffle(v128.load(s), v128.load(s, 16), 0, 2, 4, 6);
}

/**
 * packColumns on the padded image (see `padded`): a panel within one output row is two vector
 * loads per row at the panel's base plus the row's table offset; a panel across two output rows
 * blends the loads at both rows' bases; shorter output rows and the last partial panel go element
 * by element on the image itself.
 */
function packPaddedColumns(x: usize, pc: i32, kc: i32, jc: i32, nc: i32, dst: usize): void {
  const end = jc + nc;
  const rowStep = <usize>strideH * padRow, colStep = <usize>strideW << 2, table = rowTable + (<usize>pc << 2);
  for (let q = jc; q < end; q += NR, dst += <usize>kc * NR << 2) {
    const oy = q / outW, ox = q - oy * outW;
    let d = dst;
    if (q + NR <= end && ox + NR <= outW) {
      const pb = padBase + <usize>oy * rowStep + <usize>ox * colStep;
      for (let p = 0; p < kc; p++) {
        const s = pb + load<i32>(table + (<usize>p << 2));
        v128.store(d, lanes4(s, strideW));
        v128.store(d, lanes4(s + (colStep << 2), strideW), 16);
        d += NR << 2;
      }
    } else if (q + NR <= end && outW >= NR) {
      // lanes [0, r) in output row oy, [r, NR) at the start of row oy + 1
      const r = outW - ox;
      const pa = padBase + <usize>oy * rowStep + <usize>ox * colStep, pn = padBase + <usize>(oy + 1) * rowStep - <usize>r * colStep;
      const at = i32x4(0, 1, 2, 3), rV = i32x4.splat(r);
      const m0 = i32x4.lt_s(at, rV), m1 = i32x4.lt_s(i32x4.add(at, i32x4.splat(4)), rV);
      for (let p = 0; p < kc; p++) {
        const off = <usize>load<i32>(table + (<usize>p << 2));
        const sa = pa + off, sn = pn + off;
        v128.store(d, v128.bitselect(lanes4(sa, strideW), lanes4(sn, strideW), m0));
        v128.store(d, v128.bitselect(lanes4(sa + (colStep << 2), strideW), lanes4(sn + (colStep << 2), strideW), m1), 16);
        d += NR << 2;
      }
    } else packPanelPixels(x, pc, kc, oy, ox, q, end, dst);
  }
}

/**
 * packColumnsT on the padded image (see `padded`), for output rows of a multiple of 4 pixels: a
 * panel's 4 x 4 blocks (4 pixels of one output row, 4 taps) are loaded from the padded image and
 * transposed into place. A last partial panel goes through packColumnsT.
 */
function packPaddedColumnsT(x: usize, pc: i32, kc: i32, jc: i32, nc: i32, dst: usize, rows: usize): void {
  const rowStep = <usize>strideH * padRow, colStep = <usize>strideW << 2, oy0 = pc / outW, ox0 = pc - oy0 * outW;
  let jr = 0;
  for (; jr + NR <= nc; jr += NR) {
    const t = rowTable + (<usize>(jc + jr) << 2);
    const o0 = <usize>load<i32>(t), o1 = <usize>load<i32>(t, 4), o2 = <usize>load<i32>(t, 8), o3 = <usize>load<i32>(t, 12);
    const o4 = <usize>load<i32>(t, 16), o5 = <usize>load<i32>(t, 20), o6 = <usize>load<i32>(t, 24), o7 = <usize>load<i32>(t, 28);
    let oy = oy0, ox = ox0, d = dst;
    for (let p = 0; p < kc; p += 4) {
      const pb = padBase + <usize>oy * rowStep + <usize>ox * colStep;
      storeTransposed(lanes4(pb + o0, strideW), lanes4(pb + o1, strideW), lanes4(pb + o2, strideW), lanes4(pb + o3, strideW), d, NR << 2);
      storeTransposed(lanes4(pb + o4, strideW), lanes4(pb + o5, strideW), lanes4(pb + o6, strideW), lanes4(pb + o7, strideW), d + 16, NR << 2);
      d += NR << 4;
      ox += 4;
      if (ox == outW) {
        ox = 0;
        oy++;
      }
    }
    dst += <usize>kc * NR << 2;
  }
  if (jr < nc) packColumnsT(x, pc, kc, jc + jr, nc - jr, dst, rows);
}

/**
 * Copies `cg` channel planes at x (h x w) into the padded buffer (planes of hp x wp, the image at
 * row `top`, column `left`), whose border convGemm zeroed once for all its images.
 */
function padImage(x: usize, cg: i32, h: i32, w: i32, hp: i32, wp: i32, top: i32, left: i32): void {
  const rowBytes = <usize>wp << 2;
  for (let ch = 0; ch < cg; ch++) {
    const plane = x + (<usize>ch * h * w << 2);
    let d = padBase + ((<usize>(ch * hp + top) * wp + left) << 2);
    for (let y = 0; y < h; y++) {
      copyFloats(d, plane + (<usize>y * w << 2), w);
      d += rowBytes;
    }
  }
}

/**
 * Row `r` (window tap (ch, i, j)) of one image's columns over output pixels [q0, q0+count),
 * written contiguously at dst: per output row, zeros over the padding and a copy in between.
 */
function gatherColumnRow(x: usize, r: i32, q0: i32, count: i32, dst: usize): void {
  if (ASC_FEATURE_SIMD && padded) {
    // From the padded image: a copy per output row, nothing to zero.
    const off = <usize>load<i32>(rowTable + (<usize>r << 2)), rowStep = <usize>strideH * padRow;
    let oy = q0 / outW, ox = q0 - oy * outW, left = count, d = dst;
    while (left > 0) {
      const run = min(left, outW - ox);
      copyStrided(d, padBase + <usize>oy * rowStep + (<usize>(ox * strideW) << 2) + off, run, strideW);
      d += <usize>run << 2;
      left -= run;
      ox = 0;
      oy++;
    }
    return;
  }
  const taps = winH * winW, ch = r / taps, i = (r - ch * taps) / winW, j = r - ch * taps - i * winW;
  const base = x + (<usize>ch * imgH * imgW << 2);
  const offY = offY0 + i * stepY, offX = offX0 + j * stepX;
  const lo = min(outW, firstInside(offX, strideW)), hi = max(lo, min(outW, endInside(imgW, offX, strideW)));
  let oy = q0 / outW, ox = q0 - oy * outW, left = count, d = dst;
  while (left > 0) {
    const run = min(left, outW - ox), y = oy * strideH + offY;
    if (y < 0 || y >= imgH) zeroFloats(d, run);
    else {
      const a = min(max(lo, ox), ox + run), b = max(a, min(hi, ox + run));
      zeroFloats(d, a - ox);
      if (b > a) copyStrided(d + (<usize>(a - ox) << 2), base + ((<usize>y * imgW + a * strideW + offX) << 2), b - a, strideW);
      zeroFloats(d + (<usize>(b - ox) << 2), ox + run - b);
    }
    d += <usize>run << 2;
    left -= run;
    ox = 0;
    oy++;
  }
}

/**
 * B panels of the transposed columns of one image (SOURCE_COLUMNS_T): rows = output pixels
 * [pc, pc+kc), columns = window taps [jc, jc+nc). Per panel, NR rows of the columns are gathered
 * into `rows` (NR x KC floats, in L1) and transposed into the panel.
 */
function packColumnsT(x: usize, pc: i32, kc: i32, jc: i32, nc: i32, dst: usize, rows: usize): void {
  for (let jr = 0; jr < nc; jr += NR) {
    for (let t = 0; t < NR; t++) {
      const row = rows + (<usize>t * KC << 2);
      if (jr + t < nc) gatherColumnRow(x, jc + jr + t, pc, kc, row);
      else zeroFloats(row, kc);
    }
    packTransposed(rows, <usize>KC << 2, kc, dst);
    dst += <usize>kc * NR << 2;
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

/** packColumnsT's NR gathered rows of KC floats in a thread's scratch (after the edge tile). */
// @ts-ignore: decorator
@inline function gatherRows(scratch: usize): usize {
  return scratch + ((<usize>MC * KC + <usize>KC * NC + MR * NR) << 2);
}

/** packColumns' column table in a thread's scratch (after the gathered rows of packColumnsT), then the row table and the padded image. */
// @ts-ignore: decorator
@inline function columnTable(scratch: usize): usize {
  return scratch + ((<usize>MC * KC + <usize>KC * NC + MR * NR + NR * KC) << 2);
}

/** Packs B rows [pc, pc+kc) x columns [jc, jc+nc) into panels at dst, from its `source`. */
// @ts-ignore: decorator
@inline function packBlockB(source: i32, b: usize, transB: bool, k: i32, n: i32, pc: i32, kc: i32, jc: i32, nc: i32, dst: usize, scratch: usize): void {
  if (source == SOURCE_MATRIX) packB(b, transB, k, n, pc, kc, jc, nc, dst);
  else if (source == SOURCE_COLUMNS) {
    if (ASC_FEATURE_SIMD && padded) packPaddedColumns(b, pc, kc, jc, nc, dst);
    else packColumns(b, pc, kc, jc, nc, dst, columnTable(scratch));
  }
  else if (ASC_FEATURE_SIMD && padded && (outW & 3) == 0) packPaddedColumnsT(b, pc, kc, jc, nc, dst, gatherRows(scratch));
  else packColumnsT(b, pc, kc, jc, nc, dst, gatherRows(scratch));
}

/**
 * One matrix: rows [i0, i1) x columns [j0, j1) of C (m x n at c) from A and B (`source`: B is a
 * matrix, or b is an image whose columns, or their transpose, are B; see convGemm).
 * `scratch` holds gemmScratchBytes() bytes, used by this call only.
 */
function gemmBlock(
  a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, flags: i32,
  i0: i32, i1: i32, j0: i32, j1: i32, scratch: usize, source: i32,
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
  // One row block (the conv layers' 16-64 rows): A is packed once per k block and each B panel
  // right before its row slivers use it, so the panel stays in L1 instead of a whole packed B
  // block going out to L2 and back.
  const panelwise = i1 - i0 <= MC;
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min(KC, k - pc);
      const add = accumulate || pc > 0;
      if (panelwise) {
        const mc = i1 - i0;
        packA(a, transA, m, k, i0, mc, pc, kc, packedA);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          packBlockB(source, b, transB, k, n, pc, kc, jc + jr, nr, packedB, scratch);
          for (let ir = 0; ir < mc; ir += MR) {
            const cp = c + ((<usize>(i0 + ir) * n + jc + jr) << 2);
            microkernel(kc, packedA + (<usize>ir * kc << 2), packedB, cp, ldc, min(MR, mc - ir), nr, add, tile);
          }
        }
        continue;
      }
      packBlockB(source, b, transB, k, n, pc, kc, jc, nc, packedB, scratch);
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
      m, n, k, flags, i0, i1, j0, j1, scratch, SOURCE_MATRIX,
    );
  }
}

/**
 * Implicit-GEMM convolution over images [img0, img0+images) of x (NCHW, `ch` channels of h x w),
 * channels [c0, c0+cg), window kh x kw (stride sh, sw; padding ph, pw; dilation dh, dw; output
 * oh x ow). With cols_i image i's im2col columns ((cg*kh*kw) x (oh*ow), rows (channel, i, j);
 * FLIP: row (channel, i, j) reads tap (kh-1-i, kw-1-j)), and A_i the m-row matrix at a + i*aStride:
 *   !TRANS_B: C_i = A_i cols_i (+ C_i with ACCUMULATE), C_i at c + i*cStride (elements)
 *   TRANS_B:  C = (C +) sum_i A_i cols_iᵀ, the images added in order
 * restricted to rows [i0, i1) x columns [j0, j1) of each C. The columns are packed straight from
 * the image into the GEMM's B panels, never written out.
 */
export function convGemm(
  a: usize, x: usize, c: usize, m: i32, flags: i32, aStride: i32, cStride: i32, img0: i32, images: i32,
  i0: i32, i1: i32, j0: i32, j1: i32, scratch: usize,
  ch: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32, oh: i32, ow: i32, c0: i32, cg: i32,
): void {
  imgH = h;
  imgW = w;
  winH = kh;
  winW = kw;
  strideH = sh;
  strideW = sw;
  outW = ow;
  const flip = (flags & FLIP) != 0;
  offY0 = flip ? (kh - 1) * dh - ph : -ph;
  stepY = flip ? -dh : dh;
  offX0 = flip ? (kw - 1) * dw - pw : -pw;
  stepX = flip ? -dw : dw;
  setColumnRanges(columnTable(scratch));
  const kk = cg * kh * kw, hw = oh * ow, imageBytes = <usize>ch * h * w << 2;
  const weightGrad = (flags & TRANS_B) != 0, accumulate = (flags & ACCUMULATE) != 0;
  // The zero border the window reaches past the image on each side (offsets of its first and last taps).
  const yFirst = min(offY0, offY0 + (kh - 1) * stepY), yLast = (oh - 1) * sh + max(offY0, offY0 + (kh - 1) * stepY);
  const xFirst = min(offX0, offX0 + (kw - 1) * stepX), xLast = (ow - 1) * sw + max(offX0, offX0 + (kw - 1) * stepX);
  const top = max(0, -yFirst), left = max(0, -xFirst);
  const hp = top + max(h, yLast + 1), wp = left + max(w, xLast + 1);
  // No border (a 'valid' window): the images serve as their own padded buffers, nothing copied.
  // A stride-2 panel row's last vector load reaches one float past its last pixel: in place only
  // while that stays inside the memory.
  const inPlace = top == 0 && left == 0 && hp == h && wp == w && (sw == 1 || x + <usize>(img0 + images) * imageBytes + 64 <= (<usize>memory.size() << 16));
  padded = ASC_FEATURE_SIMD && sw <= 2 && kk <= TABLE_ROWS && (inPlace || <i64>cg * hp * wp <= <i64>PAD_FLOATS);
  if (padded) {
    rowTable = columnTable(scratch) + TABLE_BYTES;
    padBase = rowTable + (<usize>TABLE_ROWS << 2);
    padRow = <usize>wp << 2;
    if (!inPlace) zeroFloats(padBase, cg * hp * wp); // the border; padImage writes the inside of each image
    let r = 0;
    for (let cc = 0; cc < cg; cc++) {
      for (let ti = 0; ti < kh; ti++) {
        for (let tj = 0; tj < kw; tj++) {
          store<i32>(rowTable + (<usize>r << 2), ((cc * hp + top + offY0 + ti * stepY) * wp + left + offX0 + tj * stepX) << 2);
          r++;
        }
      }
    }
  }
  for (let i = 0; i < images; i++) {
    imgLo = x + <usize>(img0 + i) * imageBytes;
    imgHi = imgLo + imageBytes;
    const image = imgLo + (<usize>c0 * h * w << 2), ai = a + (<usize>i * aStride << 2);
    if (padded) {
      if (inPlace) padBase = image;
      else padImage(image, cg, h, w, hp, wp, top, left);
    }
    if (weightGrad) {
      gemmBlock(ai, image, c, m, kk, hw, accumulate || i > 0 ? ACCUMULATE : 0, i0, i1, j0, j1, scratch, SOURCE_COLUMNS_T);
    } else {
      gemmBlock(ai, image, c + (<usize>i * cStride << 2), m, hw, kk, accumulate ? ACCUMULATE : 0, i0, i1, j0, j1, scratch, SOURCE_COLUMNS);
    }
  }
}

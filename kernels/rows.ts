// Row helpers shared by im2col.ts and gemm.ts's implicit packing (inlined, not wasm exports).
// Rows are short (32 floats in a CIFAR layer): inline loops beat memory.copy/memory.fill, whose
// per-call cost dominated im2col.

/** First output column ox >= 0 whose input column ox*stride + off is >= 0. */
// @ts-ignore: decorator
@inline export function firstInside(off: i32, stride: i32): i32 {
  const need = -off; // ox*stride >= need
  return need <= 0 ? 0 : (need + stride - 1) / stride;
}

/** One past the last output column ox whose input column ox*stride + off is < size. */
// @ts-ignore: decorator
@inline export function endInside(size: i32, off: i32, stride: i32): i32 {
  const lim = size - off; // ox*stride < lim
  return lim <= 0 ? 0 : (lim + stride - 1) / stride;
}

/** dst[0..n) = src[0..n) (non-overlapping). */
// @ts-ignore: decorator
@inline export function copyFloats(dst: usize, src: usize, n: i32): void {
  let t = 0;
  if (ASC_FEATURE_SIMD) for (; t + 4 <= n; t += 4) v128.store(dst + (<usize>t << 2), v128.load(src + (<usize>t << 2)));
  for (; t < n; t++) store<f32>(dst + (<usize>t << 2), load<f32>(src + (<usize>t << 2)));
}

/** dst[t] = src[t*stride] for t < n. */
// @ts-ignore: decorator
@inline export function copyStrided(dst: usize, src: usize, n: i32, stride: i32): void {
  if (stride == 1) {
    copyFloats(dst, src, n);
    return;
  }
  let s = src, d = dst;
  for (let t = 0; t < n; t++) {
    store<f32>(d, load<f32>(s));
    s += <usize>stride << 2;
    d += 4;
  }
}

/** dst[0..n) = 0. */
// @ts-ignore: decorator
@inline export function zeroFloats(dst: usize, n: i32): void {
  let t = 0;
  if (ASC_FEATURE_SIMD) for (; t + 4 <= n; t += 4) v128.store(dst + (<usize>t << 2), i32x4.splat(0));
  for (; t < n; t++) store<f32>(dst + (<usize>t << 2), 0);
}

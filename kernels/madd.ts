// f32x4 multiply-add shared by the engine GEMM (gemm.ts) and the packed-inference float GEMMs
// (quant/): inlined, not a wasm export.

/**
 * c + a * b per lane. The relaxed-SIMD builds (kernels-relaxed.wasm, quant-relaxed.wasm, and
 * their unshared twins) let the engine fuse it into one FMA where the CPU has one: ~1.3x the GEMM
 * rate on x86-64 (fewer instructions per tile step) and one rounding instead of two, so results
 * differ from the other builds in the last bits.
 */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

// fp16 <-> float32 bit patterns, bit-identical to src/compress/float16.ts (round to nearest, ties
// to even; overflow to ±Infinity, subnormals kept; NaN stays NaN). Helpers of the half codecs
// (half.ts) and of the fp16 group metadata (quantize.ts); not kernels themselves (index.ts does
// not re-export this file).

/** float32 bits -> fp16 bits. */
export function toF16(bits: u32): u32 {
  const sign = (bits >>> 16) & 0x8000;
  const exp = <i32>((bits >>> 23) & 0xff);
  let mant = bits & 0x7fffff;
  if (exp == 0xff) return sign | 0x7c00 | (mant != 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = <u32>(14 - e);
    const half: u32 = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest == half && (m & 1) != 0)) m++;
    return sign | m;
  }
  let h = sign | (<u32>e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1) != 0)) h++;
  return h;
}

/** fp16 bits -> float32 (NaN: the canonical quiet NaN, as the oracle). */
export function fromF16(h: u32): f32 {
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  const sign: u32 = (h & 0x8000) << 16;
  if (exp == 0) {
    const v = <f32>(<f64>mant * 5.960464477539063e-8); // 2^-24
    return (h & 0x8000) != 0 ? -v : v;
  }
  if (exp == 0x1f) return reinterpret<f32>(mant != 0 ? 0x7fc00000 : sign | 0x7f800000); // NaN: the canonical quiet NaN, as the oracle
  return reinterpret<f32>(sign | ((exp + 112) << 23) | (mant << 13));
}

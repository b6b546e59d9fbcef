// Half-precision codecs of activation compression: float32 -> fp16 / bf16 bit patterns and back,
// bit-identical to src/compress/float16.ts (round to nearest, ties to even; fp16 overflow to
// ±Infinity, subnormals kept; NaN stays NaN). format: 0 = fp16, 1 = bf16. Row ranges [from, to)
// of the n values so the thread pool can split them.

function toF16(bits: u32): u32 {
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

function fromF16(h: u32): f32 {
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

function toBF16(bits: u32): u32 {
  if ((bits & 0x7f800000) == 0x7f800000) return (bits >>> 16) | ((bits & 0xffff) != 0 ? 0x40 : 0);
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** x (float32) -> 16-bit patterns in out (2 bytes each), values [from, to). */
export function halfEncode(x: usize, n: i32, out: usize, format: i32, from: i32, to: i32): void {
  for (let i = from; i < to && i < n; i++) {
    const b = load<u32>(x + (<usize>i << 2));
    store<u16>(out + (<usize>i << 1), <u16>(format == 0 ? toF16(b) : toBF16(b)));
  }
}

/** 16-bit patterns -> float32, values [from, to). */
export function halfDecode(src: usize, n: i32, out: usize, format: i32, from: i32, to: i32): void {
  for (let i = from; i < to && i < n; i++) {
    const h = <u32>load<u16>(src + (<usize>i << 1));
    store<f32>(out + (<usize>i << 2), format == 0 ? fromF16(h) : reinterpret<f32>(h << 16));
  }
}

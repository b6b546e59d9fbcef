// Half-precision codecs of activation compression: float32 -> fp16 / bf16 bit patterns and back,
// bit-identical to src/compress/float16.ts (round to nearest, ties to even; fp16 overflow to
// ±Infinity, subnormals kept; NaN stays NaN). format: 0 = fp16, 1 = bf16. Row ranges [from, to)
// of the n values so the thread pool can split them.

import { fromF16, toF16 } from './f16';

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

/**
 * IEEE 754 half precision (fp16) and bfloat16 conversions on raw bit patterns (Node 20 has no
 * Float16Array). Both round to nearest, ties to even; fp16 overflows to ±Infinity like IEEE.
 */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The fp16 bit pattern nearest to `x` (ties to even; NaN stays NaN; overflow gives ±Infinity). */
export function toFloat16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf or NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // too large: Infinity
  if (e <= 0) {
    // Subnormal half (or zero): shift the mantissa with the implicit 1, round to nearest even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // carries into the exponent correctly
  return h;
}

/** The number an fp16 bit pattern stands for (a table lookup: the codecs call this per group). */
export function fromFloat16Bits(h: number): number {
  return (table ??= buildTable())[h & 0xffff]!;
}

function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The bfloat16 bit pattern nearest to `x` (the top 16 bits of its float32, rounded to nearest even). */
export function toBFloat16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7f800000) === 0x7f800000) return (bits >>> 16) | ((bits & 0xffff) ? 0x40 : 0); // Inf/NaN
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function fromBFloat16Bits(h: number): number {
  u32[0] = h << 16;
  return f32[0]!;
}

/** Converts a whole array to fp16 bits. */
export function encodeFloat16(src: ArrayLike<number>, dst: Uint16Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = toFloat16Bits(src[i]!);
}

/** Every fp16 value by bit pattern (256 KiB, built on first use). */
let table: Float32Array | null = null;
function buildTable(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = halfValue(h);
  return t;
}

/** Decodes fp16 bits through the table. */
export function decodeFloat16(src: Uint16Array, dst: Float32Array | Float64Array): void {
  const t = (table ??= buildTable());
  for (let i = 0; i < src.length; i++) dst[i] = t[src[i]!]!;
}

/** Converts a whole array to bf16 bits. */
export function encodeBFloat16(src: ArrayLike<number>, dst: Uint16Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = toBFloat16Bits(src[i]!);
}

/** Decodes bf16 bits. */
export function decodeBFloat16(src: Uint16Array, dst: Float32Array | Float64Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = fromBFloat16Bits(src[i]!);
}

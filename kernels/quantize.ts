// Stochastic-rounding group quantizer (src/compress/quantize.ts `quantizeGroups`), bit for bit:
// same Philox4x32-10 chunk keys, same SplitMix-style finalizer per element pair, same f64
// arithmetic, same clamping. x: float32 [rows * rowLength]; meta: float64 (min, step) per group;
// codes: zero-filled, LSB-first, bits in {1, 2, 4, 8}. Every kernel here covers rows [rowFrom, rowTo)
// of the array (element indices stay global), so the pool can split the rows.

const M0: u32 = 0xd2511f53;
const M1: u32 = 0xcd9e8d57;
const W0: u32 = 0x9e3779b9;
const W1: u32 = 0xbb67ae85;

/** Word 0 of the Philox4x32-10 block for counter (c0, c1, c2, c3) and key (k0, k1). */
function philoxWord0(c0: u32, c1: u32, c2: u32, c3: u32, k0: u32, k1: u32): u32 {
  for (let r = 0; r < 10; r++) {
    const p0 = <u64>M0 * <u64>c0;
    const p1 = <u64>M1 * <u64>c2;
    const n0 = <u32>(p1 >> 32) ^ c1 ^ k0;
    const n2 = <u32>(p0 >> 32) ^ c3 ^ k1;
    c1 = <u32>p1;
    c3 = <u32>p0;
    c0 = n0;
    c2 = n2;
    k0 += W0;
    k1 += W1;
  }
  return c0;
}

// @ts-ignore: decorator
@inline function mix32(x: u32): u32 {
  x ^= x >> 16;
  x *= 0x85ebca6b;
  x ^= x >> 13;
  x *= 0xc2b2ae35;
  return x ^ (x >> 16);
}

export function quantizeGroups(
  x: usize, rowFrom: i32, rowTo: i32, rowLength: i32, groupSize: i32, bits: i32, noise: i32,
  seedLo: u32, seedHi: u32, step: u32, stream: u32, meta: usize, codes: usize,
): void {
  const Q = (1 << bits) - 1;
  const logBits = bits == 1 ? 0 : bits == 2 ? 1 : bits == 4 ? 2 : 3;
  const shift = 3 - logBits, lane = (8 >> logBits) - 1;
  const fq = <f64>Q;
  let g = rowFrom * ((rowLength + groupSize - 1) / groupSize);
  for (let r = rowFrom; r < rowTo; r++) {
    const rowStart = r * rowLength;
    for (let start = rowStart; start < rowStart + rowLength; start += groupSize, g++) {
      const end = min(start + groupSize, rowStart + rowLength);
      const m = load<f64>(meta + (<usize>(2 * g) << 3));
      const stepSize = load<f64>(meta + (<usize>(2 * g + 1) << 3));
      const inv = stepSize > 0 ? 1 / stepSize : 0.0;
      if (!noise) {
        for (let i = start; i < end; i++) put(codes, i, code(x, i, m, inv, 0.5, Q, fq), lane, shift, logBits);
        continue;
      }
      // Element pairs (2j, 2j + 1) share one 32-bit mix: high half for the even element.
      let chunkKey = philoxWord0(<u32>start >>> 8, step, stream, 0, seedLo, seedHi);
      let i = start;
      if (i & 1) {
        const h = mix32(chunkKey + (<u32>(i & 255) >>> 1) * 0x9e3779b9);
        put(codes, i, code(x, i, m, inv, noiseOf(h & 0xffff), Q, fq), lane, shift, logBits);
        i++;
      }
      for (; i + 1 < end; i += 2) {
        if ((i & 255) == 0) chunkKey = philoxWord0(<u32>i >>> 8, step, stream, 0, seedLo, seedHi);
        const h = mix32(chunkKey + (<u32>(i & 255) >>> 1) * 0x9e3779b9);
        const q0 = code(x, i, m, inv, noiseOf(h >>> 16), Q, fq);
        const q1 = code(x, i + 1, m, inv, noiseOf(h & 0xffff), Q, fq);
        // At 4 and 8 bits an even-aligned pair owns its bytes: store without reading them back.
        if (bits == 4) store<u8>(codes + (<usize>i >>> 1), <u8>(q0 | (q1 << 4)));
        else if (bits == 8) store<u16>(codes + <usize>i, <u16>(q0 | (q1 << 8)));
        else {
          put(codes, i, q0, lane, shift, logBits);
          put(codes, i + 1, q1, lane, shift, logBits);
        }
      }
      if (i < end) {
        if ((i & 255) == 0) chunkKey = philoxWord0(<u32>i >>> 8, step, stream, 0, seedLo, seedHi);
        const h = mix32(chunkKey + (<u32>(i & 255) >>> 1) * 0x9e3779b9);
        put(codes, i, code(x, i, m, inv, noiseOf(h >>> 16), Q, fq), lane, shift, logBits);
      }
    }
  }
}

// @ts-ignore: decorator
@inline function noiseOf(r: u32): f64 {
  return (<f64>r + 0.5) * (1.0 / 65536);
}

// @ts-ignore: decorator
@inline function code(x: usize, i: i32, m: f64, inv: f64, u: f64, Q: i32, fq: f64): i32 {
  const t = (<f64>load<f32>(x + (<usize>i << 2)) - m) * inv + u;
  return t >= fq ? Q : t >= 0 ? <i32>t : 0; // NaN -> 0
}

// @ts-ignore: decorator
@inline function put(codes: usize, i: i32, q: i32, lane: i32, shift: i32, logBits: i32): void {
  const at = codes + (<usize>i >>> shift);
  store<u8>(at, load<u8>(at) | <u8>(q << ((i & lane) << logBits)));
}

/** The min/max pass: (min, max) of every group as float64 pairs in `ranges` (groupRanges in quantize.ts). */
export function groupRanges(x: usize, rowFrom: i32, rowTo: i32, rowLength: i32, groupSize: i32, ranges: usize): void {
  let g = rowFrom * ((rowLength + groupSize - 1) / groupSize);
  for (let r = rowFrom; r < rowTo; r++) {
    const rowStart = r * rowLength;
    for (let start = rowStart; start < rowStart + rowLength; start += groupSize, g++) {
      const end = min(start + groupSize, rowStart + rowLength);
      let mn = Infinity, mx = -Infinity;
      for (let i = start; i < end; i++) {
        const v = <f64>load<f32>(x + (<usize>i << 2));
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
      store<f64>(ranges + (<usize>(2 * g) << 3), mn);
      store<f64>(ranges + (<usize>(2 * g + 1) << 3), mx);
    }
  }
}

/**
 * Inverse of quantizeGroups (dequantizeGroups in quantize.ts), bit for bit: out[i] =
 * f32(f64(min) + f64(q) * f64(step)). meta: float32 (min, step) per group; out: float32.
 */
export function dequantizeGroups(codes: usize, meta: usize, rowFrom: i32, rowTo: i32, rowLength: i32, groupSize: i32, bits: i32, out: usize): void {
  const Q = (1 << bits) - 1;
  const logBits = bits == 1 ? 0 : bits == 2 ? 1 : bits == 4 ? 2 : 3;
  const shift = 3 - logBits, lane = (8 >> logBits) - 1;
  let g = rowFrom * ((rowLength + groupSize - 1) / groupSize);
  for (let r = rowFrom; r < rowTo; r++) {
    const rowStart = r * rowLength;
    for (let start = rowStart; start < rowStart + rowLength; start += groupSize, g++) {
      const end = min(start + groupSize, rowStart + rowLength);
      const mn = <f64>load<f32>(meta + (<usize>(2 * g) << 2));
      const stepSize = <f64>load<f32>(meta + (<usize>(2 * g + 1) << 2));
      let i = start;
      // Whole bytes at 4 bits (the common case): two codes per load.
      if (bits == 4) {
        if (i & 1) {
          store<f32>(out + (<usize>i << 2), <f32>(mn + <f64>(load<u8>(codes + (<usize>i >>> 1)) >> 4) * stepSize));
          i++;
        }
        for (; i + 1 < end; i += 2) {
          const b = <i32>load<u8>(codes + (<usize>i >>> 1));
          store<f32>(out + (<usize>i << 2), <f32>(mn + <f64>(b & 15) * stepSize));
          store<f32>(out + (<usize>(i + 1) << 2), <f32>(mn + <f64>(b >> 4) * stepSize));
        }
      }
      for (; i < end; i++) {
        const q = (<i32>load<u8>(codes + (<usize>i >>> shift)) >> ((i & lane) << logBits)) & Q;
        store<f32>(out + (<usize>i << 2), <f32>(mn + <f64>q * stepSize));
      }
    }
  }
}

/** Packs a 0/1 uint8 mask into bits, LSB-first (every byte of `bits` written); returns the index of the first value that is not 0 or 1, or -1. */
export function packMask(mask: usize, n: i32, bits: usize): i32 {
  const whole = n & ~7;
  for (let i = 0; i < whole; i += 8) {
    const v = load<u64>(mask + <usize>i);
    if (v & 0xfefefefefefefefe) return firstBad(mask, i, n);
    // Gather bit 0 of each byte into one byte: the multiply moves byte k's bit to bit 56 + k.
    store<u8>(bits + (<usize>i >>> 3), <u8>((v * 0x0102040810204080) >> 56));
  }
  if (whole < n) {
    let b: u32 = 0;
    for (let i = whole; i < n; i++) {
      const v = <u32>load<u8>(mask + <usize>i);
      if (v > 1) return i;
      b |= v << <u32>(i & 7);
    }
    store<u8>(bits + (<usize>whole >>> 3), <u8>b);
  }
  return -1;
}

function firstBad(mask: usize, from: i32, n: i32): i32 {
  for (let i = from; i < n; i++) if (load<u8>(mask + <usize>i) > 1) return i;
  return -1;
}

/** Inverse of packMask: n 0/1 bytes from LSB-first bits. */
export function unpackMask(bits: usize, n: i32, mask: usize): void {
  const whole = n & ~7;
  for (let i = 0; i < whole; i += 8) {
    const b = <u64>load<u8>(bits + (<usize>i >>> 3));
    // Spread bit k to byte k: replicate the byte into all 8 lanes, keep bit k in lane k.
    const spread = ((b * 0x0101010101010101) & 0x8040201008040201);
    store<u64>(mask + <usize>i, ((spread + 0x00406070787c7e7f) >> 7) & 0x0101010101010101);
  }
  for (let i = whole; i < n; i++) store<u8>(mask + <usize>i, <u8>((load<u8>(bits + (<usize>i >>> 3)) >> <u8>(i & 7)) & 1));
}

/**
 * Reference codec and packed-inference kernels: the Tensor contract over the plain-array
 * algorithms, which live beside their formats (compress/quantize.ts, quant/kernels.ts).
 */
import type { FloatArray } from '../../core/dtype.js';
import type { Category } from '../../core/ledger.js';
import { Tensor } from '../../core/tensor.js';
import {
  dequantizeGroups as dequantizeArrays, groupRanges as rangesOf, metaFromRanges, packInts, quantizeGroups as quantizeArrays, unpackInts,
  type CodeBits, type GroupLayout, type MetaPrecision, type NoiseKey,
} from '../../compress/quantize.js';
import { decodeBFloat16, decodeFloat16, encodeBFloat16, encodeFloat16 } from '../../compress/float16.js';
import { cometDecode as decodeComet, cometEncode as encodeComet } from '../../compress/comet.js';
import type { HalfFormat } from '../kernels.js';
export { smartdealCodes, smartdealGemm, smartdealProject } from '../../quant/smartdeal-kernels.js';
export { sparseGemm } from '../../quant/sparse.js';
export { binaryConv, binaryConvFloat, binaryConvSigns, binaryGemm, floatConv, floatConvSigns, floatGemm, int8Conv, int8Convs, int8Gemm, maxPoolSigns, packSigns, stageScope } from '../../quant/kernels.js';

export function groupRanges(x: Tensor, ranges: Tensor, layout: GroupLayout): void {
  rangesOf(x.data() as FloatArray, layout, ranges.data() as Float64Array);
}

export function quantizeGroups(x: Tensor, meta: Tensor, codes: Tensor, layout: GroupLayout, bits: CodeBits, noise: NoiseKey | null): void {
  quantizeArrays(x.data() as FloatArray, layout, bits, noise, meta.data(), codes.data() as Uint8Array);
}

export function groupQuantize(x: Tensor, meta: Tensor, codes: Tensor, layout: GroupLayout, bits: CodeBits, noise: NoiseKey | null, precision: MetaPrecision): boolean {
  const m = meta.data() as Float64Array;
  rangesOf(x.data() as FloatArray, layout, m);
  if (metaFromRanges(m, bits, precision) !== precision) return false;
  quantizeArrays(x.data() as FloatArray, layout, bits, noise, m, codes.data() as Uint8Array);
  return true;
}

export function dequantizeGroups(codes: Tensor, meta: Tensor, out: Tensor, layout: GroupLayout, bits: CodeBits): void {
  dequantizeArrays(codes.data() as Uint8Array, meta.data(), layout, bits, out.data() as FloatArray);
}

export function packMask(mask: Tensor, bits: Tensor): number {
  const v = mask.data();
  for (let i = 0; i < v.length; i++) if (v[i] !== 0 && v[i] !== 1) return i;
  const out = bits.data() as Uint8Array;
  out.fill(0);
  packInts(v, 1, out);
  return -1;
}

export function unpackMask(bits: Tensor, mask: Tensor): void {
  unpackInts(bits.data() as Uint8Array, 1, mask.data());
}

/** The 16-bit patterns of a uint8 tensor (2 bytes per value, 2-byte aligned in the arena). */
function halves(bytes: Tensor, n: number): Uint16Array {
  const b = bytes.data() as Uint8Array;
  return new Uint16Array(b.buffer, b.byteOffset, n);
}

export function halfEncode(x: Tensor, bytes: Tensor, format: HalfFormat): void {
  (format === 'fp16' ? encodeFloat16 : encodeBFloat16)(x.data(), halves(bytes, x.size));
}

export function halfDecode(bytes: Tensor, out: Tensor, format: HalfFormat): void {
  (format === 'fp16' ? decodeFloat16 : decodeBFloat16)(halves(bytes, out.size), out.data() as FloatArray);
}

export function cometEncode(x: Tensor, bound: number, category: Category): Tensor {
  const stream = encodeComet(x.data() as FloatArray, bound);
  const out = Tensor.uninitialized([stream.length], 'uint8', category); // every byte set below
  (out.data() as Uint8Array).set(stream);
  return out;
}

export function cometDecode(bytes: Tensor, out: Tensor): void {
  decodeComet(bytes.data() as Uint8Array, out.data() as FloatArray);
}

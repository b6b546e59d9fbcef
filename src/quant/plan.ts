/**
 * How each layer is deployed: which kernel runs it and how many bits its weights take once
 * converted. summary() and convert() both read this, so the report and the file agree.
 *
 * @example
 * layerPlan(new QuantLinear(64, 10, { inputQuantizer: 'ste_sign', kernelQuantizer: 'ste_sign', kernelConstraint: 'weight_clip' }));
 * // { kernel: 'binary', weightBits: 1, inputBits: 1, packedCompute: true, channelScale: false }
 */
import { Conv2d, Linear } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { isQuantLayer } from './layers.js';

/**
 * - binary: ±1 weights × ±1 inputs, XOR + popcount on packed words
 * - binary_weights: ±1 weights (packed, 1 bit) × float input, float accumulation
 * - ternary_weights: {−1, 0, +1} weights (2 bits) × float input, float accumulation
 * - int8: int8 weights × int8 inputs, int32 accumulation
 * - nested_weights: 8-bit nested codes (int8) read at `bits` (2..8) by dropping low bits × float
 *   input, float accumulation
 * - smartdeal: a float basis × vector-sparse power-of-two coefficients (SmartDeal), computed on
 *   the factors (z = B·x per input segment, then shift-and-add of the kept coefficients)
 * - float: float32 weights (plain layers, and quantizers the converter cannot pack: fake-quantized
 *   weights are stored dequantized in float32)
 */
export type LayerKernel = 'binary' | 'binary_weights' | 'ternary_weights' | 'int8' | 'nested_weights' | 'smartdeal' | 'float';

export interface LayerPlan {
  kernel: LayerKernel;
  /** Bits per stored weight (smartdeal: the layer's stored bits over its weight count, fractional). */
  weightBits: number;
  /** Input precision as the layer sees it (32 = float). */
  inputBits: number;
  /** True when the packed/integer kernel does the arithmetic; false = float fallback. */
  packedCompute: boolean;
  /** Per-output-channel float scale stored with the weights (alpha of XNOR/BWN/TWN). */
  channelScale: boolean;
  /** MACs per output value when the kernel does not run the dense product outC·K (smartdeal). */
  macsPerOutput?: number;
  /** Fraction of the weights that are structural zeros (not stored). */
  sparsity?: number;
  /** nested_weights: the width the layer reads now (its stored codes are weightBits = 8 wide). */
  readBits?: number;
  /** Why a quantized layer falls back to float (for the deployment report). */
  note?: string;
}

/** Each quantizer says how it deploys (Quantizer.deployment); no quantizer is recognized by name. */
export function layerPlan(m: Module): LayerPlan | null {
  if (isQuantLayer(m)) {
    const { inputQuantizer: iq, kernelQuantizer: kq } = m;
    const inputBits = iq ? iq.precision : 32;
    const k = kq?.deployment(), x = iq?.deployment();
    const channelScale = !!k?.channelScale;
    // Packed ±1 inputs need unscaled signs.
    const signInput = x?.values === 'sign' && !x.channelScale;
    if (k?.values === 'sign' && signInput) return { kernel: 'binary', weightBits: k.bitsPerWeight?.(m.weight) ?? 1, inputBits, packedCompute: true, channelScale };
    if (k?.values === 'sign' && !iq) {
      return { kernel: 'binary_weights', weightBits: 1, inputBits, packedCompute: false, channelScale, note: 'float input: 1-bit weights, float accumulation (BWN-style, no XNOR speed-up)' };
    }
    if (k?.values === 'ternary' && !iq) {
      return { kernel: 'ternary_weights', weightBits: 2, inputBits, packedCompute: false, channelScale, note: 'float input: 2-bit weights, float accumulation' };
    }
    if (k?.values === 'nested' && !iq) {
      return { kernel: 'nested_weights', weightBits: 8, readBits: kq!.precision, inputBits, packedCompute: false, channelScale, note: `float input: 8-bit nested weights read at ${kq!.precision} bits, float accumulation` };
    }
    if (k?.values === 'smartdeal' && !iq) {
      return {
        kernel: 'smartdeal', weightBits: k.bitsPerWeight!(m.weight), inputBits, packedCompute: true, channelScale: false,
        macsPerOutput: k.macsPerOutput!(m.weight), sparsity: k.sparsity!(m.weight),
      };
    }
    if (k?.values === 'int8' && x?.values === 'int8') return { kernel: 'int8', weightBits: 8, inputBits: 8, packedCompute: true, channelScale: false };
    if (!iq && !kq) return { kernel: 'float', weightBits: 32, inputBits, packedCompute: false, channelScale: false };
    return {
      kernel: 'float', weightBits: 32, inputBits, packedCompute: false, channelScale: false,
      note: `no packed kernel for input '${iq?.name ?? 'float'}' x kernel '${kq?.name ?? 'float'}': weights stored dequantized in float32`,
    };
  }
  if (m instanceof Linear || m instanceof Conv2d) return { kernel: 'float', weightBits: 32, inputBits: 32, packedCompute: false, channelScale: false };
  return null;
}

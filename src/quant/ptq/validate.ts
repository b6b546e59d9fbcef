/**
 * Checks of an exported quantized model against slimgrad's deployed one: the int8 input codes
 * each deployed int8 stage computes (to compare with an ONNX runtime's QuantizeLinear outputs).
 *
 * @example
 * const codes = deployedInputCodes(deployed, x, [n, 1, 28, 28]);  // one Int8Array per int8 stage
 */
import { runDeployed, type DeployedModel } from '../runtime.js';
import { quantizeActivation } from './activation.js';

export function deployedInputCodes(model: DeployedModel, x: Float32Array, shape: number[]): Int8Array[] {
  const codes: Int8Array[] = [];
  runDeployed(model, x, shape, (s, h) => {
    if (s.kernel !== 'int8') return;
    const [lo, hi] = s.inputRange ?? [-128, 127];
    codes.push(quantizeActivation(h.data, h.shape, { step: s.inputStep, lo, hi, border: s.inputBorder }));
  });
  return codes;
}

/** Largest |a − b| over two code arrays (LSBs). */
export function maxCodeDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxCodeDiff: ${a.length} vs ${b.length} codes`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

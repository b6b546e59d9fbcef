/**
 * Activation-compressed training (act.md): compressors for saved-for-backward values, save
 * policies, the `withCompression` scope / `Compression` session, and the memory planner.
 *
 * @example
 * import { Compression, planSavedBytes } from 'slimgrad';
 * const act = new Compression({ mode: 'int2', model, seed: 1 });
 * const loss = act.run(() => crossEntropy(model.call(x), y));
 * backward(loss);
 */
export { Compression, withCompression, type CompressionStats } from './act.js';
export {
  encodingName, packTensor, packedByteLength, releasePacked, unpackTensor, validateEncoding,
  type Encoding, type PackedTensor,
} from './codecs.js';
export { ACT_MODES, ActPolicy, lastLinearPath, parseActSpec, parseMode, type ActConfig, type ActMode, type SaveContext } from './policy.js';
export {
  findMaxBatch, fitPeakModel, measureStep, planSavedBytes, recordSaves, releaseGraph,
  type ForwardFn, type SaveRecording, type PeakModel, type PeakProbe, type PlannedSave, type SavedBytesPlan, type StepMeasurement,
} from './planner.js';
export {
  codeBytes, dequantizeGroups, groupMeta, packInts, quantizeGroups, unpackInts,
  type CodeBits, type GroupLayout, type MetaPrecision, type NoiseKey,
} from './quantize.js';
export { allocateBits, predictedVariance, type AllocationItem } from './auto.js';
export { cometBound, cometDecode, cometEncode } from './comet.js';
export { fromBFloat16Bits, fromFloat16Bits, toBFloat16Bits, toFloat16Bits } from './float16.js';

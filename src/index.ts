/**
 * slimgrad: deep learning in TypeScript with far less memory and far fewer bits.
 *
 * @example
 * ```ts
 * import { createModel, Adam, fit, syntheticShapes } from 'slimgrad';
 * const [train, test] = syntheticShapes({ n: 2000, seed: 1 }).split(1600);
 * const model = createModel('lenet', train.itemShape, 10, 1);
 * const report = fit(model, train, test, { epochs: 2, batchSize: 64, optimizer: new Adam(model.parameters()) });
 * console.log(report.testAccuracy, report.peakSavedBytes);
 * ```
 */
import './ops/all.js'; // registers every op (engine and quantization)
import { useFastestBackend } from './backends/index.js';

export { Tensor, fromValues } from './core/tensor.js';
export type { DType } from './core/dtype.js';
export { scope, scopeAsync, keep } from './core/scope.js';
export { memory, resetPeakMemory, type MemoryReport, type Category } from './core/ledger.js';
export { arena, setMemoryLimit, parseByteSize, ArenaLimitError, ARENA_MAX_BYTES } from './core/arena.js';
export { StepPlan } from './core/plan.js';
export { ShapeError } from './core/shape.js';
export { Rng } from './util/rng.js';

export * as ops from './ops/index.js';
export {
  add, sub, mul, div, neg, exp, log, sqrt, tanh, sigmoid, softplus, gelu, relu, leakyRelu, hardtanh,
  matmul, conv2d, maxPool2d, avgPool2d, globalAvgPool2d, batchNorm, layerNorm, softmax, logSoftmax, crossEntropy, mse,
  dropout, embedding, reshape, permute, transpose, slice, concat, split, pad, sum, mean, max, zeros, ones, full,
} from './ops/index.js';
export { defineOp, allOps, getOp, type OpDef } from './ops/registry.js';

export { backward, grad } from './autograd/backward.js';
export { noGrad, isGradEnabled } from './autograd/mode.js';
export { withSavedTensorHooks, type SavedTensorHooks, type SaveInfo, type SaveRole } from './autograd/saved.js';
export { gradcheck } from './autograd/gradcheck.js';

export * from './nn/index.js';
export * from './optim/index.js';
export * from './data/index.js';
export { encodeSafetensors, decodeSafetensors } from './io/safetensors.js';
export { saveModule, loadModule, saveTrainingCheckpoint, loadTrainingCheckpoint } from './io/checkpoint.js';
export { writeFileAtomic, checkOutputPath, OutputPathError } from './io/write.js';
export { importOnnx, type ImportedModel } from './io/onnx/import.js';
export { exportOnnx, type ExportOptions } from './io/onnx/export.js';
export { GraphModule, Merge, type GraphNode } from './io/onnx/graph.js';
export * from './train/index.js';
export * from './explain/index.js';
export {
  Compression, withCompression, ActPolicy, ACT_MODES, planSavedBytes, recordSaves, measureStep, findMaxBatch, fitPeakModel,
  packTensor, unpackTensor, releasePacked, packedByteLength, parseActSpec, allocateBits, cometEncode, cometDecode,
  type ActConfig, type ActMode, type Encoding, type PackedTensor, type SavedBytesPlan, type CompressionStats,
} from './compress/index.js';
export * as quant from './quant/index.js';
export { saveDeployed, loadDeployed, loadQuantKernelsFromBuild } from './io/quant.js';
export * as distributed from './distributed/index.js';

export { setBackend, getBackend, listBackends, registerBackend } from './backends/index.js';
export { useFastestBackend, setThreads, getThreads, shutdownThreads, wasmVariant } from './backends/index.js';

// The fastest available kernels by default; the reference backend stays selectable (setBackend).
useFastestBackend();

/**
 * Everything in slimgrad that runs on any JavaScript engine: no Node built-in is reached from
 * here (test/browser/bundle.test.ts bundles it for browsers and fails on one). The Node entry
 * (index.ts) adds file I/O, ONNX, the distributed pipeline and selects the wasm backend at import;
 * the browser entry (browser.ts) adds byte/Blob/fetch loaders and an async start of the kernels.
 */
import './ops/all.js'; // registers every op (engine and quantization)

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
export * from './data/portable.js';
export { encodeSafetensors, decodeSafetensors } from './io/safetensors.js';
export { encodeModule, decodeModuleInto } from './io/state.js';
export * from './train/index.js';
export * from './explain/index.js';
export {
  Compression, withCompression, ActPolicy, ACT_MODES, planSavedBytes, recordSaves, measureStep, findMaxBatch, fitPeakModel,
  packTensor, unpackTensor, releasePacked, packedByteLength, parseActSpec, allocateBits, cometEncode, cometDecode,
  type ActConfig, type ActMode, type Encoding, type PackedTensor, type SavedBytesPlan, type CompressionStats,
} from './compress/index.js';
export * as quant from './quant/index.js';

export { setBackend, getBackend, listBackends, registerBackend } from './backends/index.js';
export { useFastestBackend, setThreads, getThreads, shutdownThreads, wasmVariant } from './backends/index.js';

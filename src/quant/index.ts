/** Quantized, binary and ternary networks: quantizers, layers, models, summary, conversion, packed kernels. */
export * from './quantizers.js';
export { fakeQuant, fakeQuantGrad, roundHalfAway, type FakeQuantAttrs } from './ops.js';
export * from './layers.js';
export * from './models.js';
export * from './plan.js';
export * from './summary.js';
export * from './convert.js';
export { runDeployed, floatWeights } from './runtime.js';
export { runPacked, SPARSE_MAX_DENSITY } from './packed.js';
export { denseWeights, density, encodeFloat, encodeTernary, sparseGemm, toCsr, type Csr } from './sparse.js';
export * from '../io/deployed-format.js';
export * from './kernels.js';
export { loadQuantKernels, quantKernels, quantWasmFile, useQuantKernels, QuantWasmKernels, type QuantWasmExports } from '../backends/index.js';
export * from './ptq/ptq.js';
export * from './ptq/observers.js';
export * from './ptq/mixed.js';
export { quantizeActivation, type ActivationGrid } from './ptq/activation.js';
export { deployedInputCodes, maxCodeDiff } from './ptq/validate.js';

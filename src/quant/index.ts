/** Quantized, binary and ternary networks: quantizers, layers, models, summary, conversion, packed kernels. */
export * from './quantizers.js';
export { fakeQuant, fakeQuantGrad, nestedCode, roundHalfAway, type FakeQuantAttrs } from './ops.js';
export * from './layers.js';
export * from './models.js';
export * from './plan.js';
export * from './summary.js';
export * from './convert.js';
export { isNested, runDeployed, smartdealFactors, withBits } from './runtime.js';
export * from './smartdeal.js';
export { runPacked } from './packed.js';
export * from '../io/deployed-format.js';
export * from './kernels.js';
export { loadQuantKernels, quantKernels, quantWasmFile, useQuantKernels, QuantWasmKernels, type QuantWasmExports } from '../backends/index.js';
export * from './ptq/ptq.js';
export * from './ptq/observers.js';
export * from './ptq/mixed.js';
export { quantizeActivation, type ActivationGrid } from './ptq/activation.js';
export { deployedInputCodes, maxCodeDiff } from './ptq/validate.js';

/** Every op, functional form. Importing this module registers all ops in the registry. */
export * from './elementwise.js';
export * from './reduce.js';
export * from './movement.js';
export * from './matmul.js';
// The conv2d op and its options; the data-gradient plan (inputGradAlgorithm) stays internal.
export { conv2d, convGeometry, type Conv2dOptions } from './conv.js';
export * from './pool.js';
export * from './norm.js';
export * from './nnops.js';
export { allOps, getOp, defineOp, runOp, type OpDef, type OpSample, type InputSpec } from './registry.js';

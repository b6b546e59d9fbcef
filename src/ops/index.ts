/** Every op, functional form. Importing this module registers all ops in the registry. */
export * from './elementwise.js';
export * from './reduce.js';
export * from './movement.js';
export * from './matmul.js';
export * from './conv.js';
export * from './pool.js';
export * from './norm.js';
export * from './nnops.js';
export { allOps, getOp, defineOp, runOp, type OpDef, type OpSample, type InputSpec } from './registry.js';

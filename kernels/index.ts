// Entry point of the kernel module: every export here is callable from TypeScript
// (src/backends/wasm), and every exported function must be a kernel of the contract
// (src/backends/kernels.ts; test/backends/kernels.test.ts checks it). Compiled by
// scripts/build-kernels.mjs. A kernel added to one of these files is exported as it is.
export { convGemm, gemm, gemmScratchBytes } from './gemm';
export * from './im2col';
export * from './quantize';
export * from './pool';
export * from './elementwise';
export * from './tensor';
export * from './half';
export * from './comet';
export * from './fakequant';
export * from './smartdeal';

// Entry point of the kernel module: every export here is callable from TypeScript
// (src/backends/wasm). Compiled by scripts/build-kernels.mjs.
export { gemm, gemmScratchBytes } from './gemm';
export { im2col, col2im } from './im2col';
export { groupRanges, quantizeGroups, dequantizeGroups, packMask, unpackMask } from './quantize';
export { maxPool2d, maxPool2dGrad } from './pool';
export { channelMoments, channelAffine, channelGradSums, reluMask, maskMul, binary, sgdUpdate, adamUpdate } from './elementwise';

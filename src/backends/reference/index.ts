import type { Kernels } from '../kernels.js';
import { adamUpdate, binary, channelAffine, channelGradSums, channelMoments, maskMul, reluMask, sgdUpdate } from './elementwise.js';
import { gemm } from './gemm.js';
import { col2im, im2col } from './im2col.js';
import { maxPool2d, maxPool2dGrad } from './pool.js';

/** The plain-TypeScript backend: every kernel, any float dtype; the oracle for all others. */
export const referenceKernels: Kernels = { gemm, im2col, col2im, maxPool2d, maxPool2dGrad, channelMoments, channelAffine, channelGradSums, reluMask, maskMul, binary, sgdUpdate, adamUpdate };

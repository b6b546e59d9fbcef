import type { Kernels } from '../kernels.js';
import * as codecs from './codecs.js';
import * as elementwise from './elementwise.js';
import { fakeQuant, fakeQuantGrad, sin } from './fakequant.js';
import { gemm } from './gemm.js';
import { col2im, convGemm, im2col } from './im2col.js';
import { parallelFor, parallelSlots } from './parallel.js';
import { maxPool2d, maxPool2dGrad } from './pool.js';
import * as tensor from './tensor.js';

/**
 * The plain-TypeScript backend: every kernel, any dtype; the oracle for all others. Every
 * function a reference module exports is a kernel (the contract, kernels.ts, checks the set).
 */
export const referenceKernels: Kernels = { parallelFor, parallelSlots, gemm, convGemm, im2col, col2im, maxPool2d, maxPool2dGrad, ...elementwise, ...tensor, ...codecs, fakeQuant, fakeQuantGrad, sin };

/** Every kernel of the contract, by name (the wasm binding and the generated kernel tests walk it). */
export const KERNEL_NAMES = Object.keys(referenceKernels).sort() as (keyof Kernels)[];

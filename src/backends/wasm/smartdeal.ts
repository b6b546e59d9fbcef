/**
 * SmartDeal's decomposition kernels of the contract on kernels/smartdeal.ts: argument checks (the
 * reference's), float32 segments only (float64 weights run the reference), emax within the
 * exponents the kernel forms exactly (others run the reference); one thread (the sums' order is
 * part of the contract).
 */
import type { Tensor } from '../../core/tensor.js';
import { projectionShape, smartdealCodes, smartdealProject } from '../../quant/smartdeal-kernels.js';
import type { Kernels } from '../kernels.js';
import type { WasmKernels } from './kernels.js';

interface SmartDealExports {
  smartdealProject(w: number, p: number, rows: number, S: number, r: number): number;
  smartdealCodes(w: number, p: number, codes: number, sums: number, rows: number, S: number, r: number, emax: number): number;
}

const usable = (...ts: (Tensor | null)[]): boolean => ts.every((t) => !t || t.isContiguous());

/** The smartdeal kernels of the engine module, bound by name next to WasmKernels (bindKernels). */
export class SmartDealWasmKernels implements Pick<Kernels, 'smartdealProject' | 'smartdealCodes'> {
  constructor(private readonly engine: WasmKernels) {}

  private get exports(): SmartDealExports {
    return this.engine.module.exports as unknown as SmartDealExports;
  }

  smartdealProject(w: Tensor, p: Tensor): number {
    if (w.dtype !== 'float32' || !usable(w, p)) return smartdealProject(w, p);
    const [rows, S, r] = projectionShape('smartdealProject', w, p);
    this.engine.assertNotRecording('smartdealProject');
    return this.exports.smartdealProject(w.ptr, p.ptr, rows, S, r);
  }

  smartdealCodes(w: Tensor, p: Tensor, codes: Tensor, sums: Tensor | null, emax: number): number {
    if (w.dtype !== 'float32' || !usable(w, p, codes, sums) || !(Number.isInteger(emax) && emax >= -1015 && emax <= 1022)) return smartdealCodes(w, p, codes, sums, emax);
    const [rows, S, r] = projectionShape('smartdealCodes', w, p, codes, sums);
    this.engine.assertNotRecording('smartdealCodes');
    return this.exports.smartdealCodes(w.ptr, p.ptr, codes.ptr, sums ? sums.ptr : 0, rows, S, r, emax);
  }
}

import type { FloatArray } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import type { GemmArgs } from '../kernels.js';

/**
 * Reference GEMM: plain loops in an order that streams rows of B and C (i-k-j), so it is correct
 * for every transpose variant and still usable for float64 gradient checks.
 */
export function gemm(at: Tensor, bt: Tensor, ct: Tensor, p: GemmArgs): void {
  const a = at.data() as FloatArray, b = bt.data() as FloatArray, c = ct.data() as FloatArray;
  const { m, n, k, transA, transB } = p;
  for (let bi = 0; bi < p.batch; bi++) {
    const ao = bi * p.aStride, bo = bi * p.bStride, co = bi * m * n;
    if (!p.accumulate) c.fill(0, co, co + m * n);
    for (let i = 0; i < m; i++) {
      const crow = co + i * n;
      for (let kk = 0; kk < k; kk++) {
        const av = transA ? a[ao + kk * m + i]! : a[ao + i * k + kk]!;
        if (av === 0) continue;
        if (transB) {
          for (let j = 0; j < n; j++) c[crow + j]! += av * b[bo + j * k + kk]!;
        } else {
          const brow = bo + kk * n;
          for (let j = 0; j < n; j++) c[crow + j]! += av * b[brow + j]!;
        }
      }
    }
  }
}

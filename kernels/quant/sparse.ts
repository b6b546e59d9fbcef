// Sparse × dense GEMM of pruned layers (src/quant/sparse.ts is the reference): CSR weight rows
// (rowPtr i32 [rows + 1], cols i32, values f32) times x [batch, k, p] (p contiguous) into
// out [batch, rows, p]. Each non-zero adds value·x[col, :] to its output row, 4 pixels per f32x4;
// products and sums round to f32 one by one, as the reference does.

export function sparseGemmF32(rowPtr: usize, cols: usize, vals: usize, x: usize, out: usize, rows: i32, k: i32, p: i32, b0: i32, b1: i32): void {
  const rowBytes = <usize>p << 2;
  for (let b = b0; b < b1; b++) {
    const xb = x + <usize>b * <usize>k * rowBytes, ob = out + <usize>b * <usize>rows * rowBytes;
    for (let o = 0; o < rows; o++) {
      const dst = ob + <usize>o * rowBytes;
      const j0 = load<i32>(rowPtr + (<usize>o << 2)), j1 = load<i32>(rowPtr + (<usize>(o + 1) << 2));
      if (p == 1) {
        let s: f32 = 0;
        for (let j = j0; j < j1; j++) s += load<f32>(vals + (<usize>j << 2)) * load<f32>(xb + (<usize>load<i32>(cols + (<usize>j << 2)) << 2));
        store<f32>(dst, s);
        continue;
      }
      memory.fill(dst, 0, rowBytes);
      for (let j = j0; j < j1; j++) {
        const v = load<f32>(vals + (<usize>j << 2));
        const src = xb + <usize>load<i32>(cols + (<usize>j << 2)) * rowBytes;
        const vv = f32x4.splat(v);
        let q = 0;
        for (; q + 4 <= p; q += 4) {
          const off = <usize>q << 2;
          v128.store(dst + off, f32x4.add(v128.load(dst + off), f32x4.mul(vv, v128.load(src + off))));
        }
        for (; q < p; q++) {
          const off = <usize>q << 2;
          store<f32>(dst + off, load<f32>(dst + off) + v * load<f32>(src + off));
        }
      }
    }
  }
}

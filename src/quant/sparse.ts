/**
 * Sparse storage of deployed weights and the sparse GEMM behind pruned layers. A stage whose
 * weight matrix [rows, K] has many zeros stores a bitmap `mask` (one bit per weight, row-major,
 * 32 per Uint32 word) and only its non-zeros, in order: float32 values (float layers), or one sign
 * bit each (ternary layers, bit 1 = −1). Conversion picks the sparse encoding only where it takes
 * fewer bytes than the dense one (float32 rows; two bit planes per ternary row). At run time the
 * non-zeros become CSR rows for `sparseGemm` (out[o, p] = Σ_j w[o, j]·x[j, p]).
 *
 * @example
 * const { weights, mask } = encodeFloat(Float32Array.of(0, 2, 0, 0, -1, 0, 0, 0), 2, 4);  // mask set: 1 + 2 words < 8 floats
 * denseWeights({ kernel: 'float', outC: 2, inC: 4, op: 'dense', weights, mask } as MatStage);  // the 8 values back
 */
import { packTernaryRows, popcount32, unpackRows, wordsFor } from './kernels.js';
import type { MatStage } from './runtime.js';

/** Values per weight row of a stage: inC·k·k for conv, inC for dense. */
export const rowLength = (s: Pick<MatStage, 'op' | 'inC' | 'k'>): number => (s.op === 'conv' ? s.inC * s.k * s.k : s.inC);

/** The bitmap of the non-zeros of `v` (bit i of word i >> 5). */
function nonzeroMask(v: ArrayLike<number>): { mask: Uint32Array; nnz: number } {
  const mask = new Uint32Array(wordsFor(v.length));
  let nnz = 0;
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) (mask[i >>> 5] |= 1 << (i & 31)), nnz++;
  return { mask, nnz };
}

/** Bytes of the two encodings of an n-weight matrix with nnz non-zeros: [dense, sparse]. */
export function encodedBytes(kind: 'float' | 'ternary', rows: number, k: number, nnz: number): [number, number] {
  const maskBytes = 4 * wordsFor(rows * k);
  return kind === 'float' ? [4 * rows * k, maskBytes + 4 * nnz] : [4 * rows * 2 * wordsFor(k), maskBytes + 4 * wordsFor(nnz)];
}

/** Float weight rows: dense float32, or mask + non-zero values when that is smaller. */
export function encodeFloat(v: Float32Array, rows = 1, k = v.length): { weights: Float32Array; mask?: Uint32Array } {
  const { mask, nnz } = nonzeroMask(v);
  const [dense, sparse] = encodedBytes('float', rows, k, nnz);
  if (sparse >= dense) return { weights: v };
  const values = new Float32Array(nnz);
  for (let i = 0, j = 0; i < v.length; i++) if (v[i] !== 0) values[j++] = v[i]!;
  return { weights: values, mask };
}

/** Ternary codes {−1, 0, +1} [rows, k]: two bit planes per row, or mask + one sign bit per non-zero when that is smaller. */
export function encodeTernary(codes: ArrayLike<number>, rows: number, k: number): { weights: Uint32Array; mask?: Uint32Array } {
  const { mask, nnz } = nonzeroMask(codes);
  const [dense, sparse] = encodedBytes('ternary', rows, k, nnz);
  if (sparse >= dense) return { weights: packTernaryRows(codes, rows, k) };
  const signs = new Uint32Array(wordsFor(nnz));
  for (let i = 0, j = 0; i < codes.length; i++) {
    if (codes[i] === 0) continue;
    if (codes[i]! < 0) signs[j >>> 5] |= 1 << (j & 31);
    j++;
  }
  return { weights: signs, mask };
}

/** The non-zero count of a sparse stage, after checking its arrays against its shape (a file may lie). */
function checkedNnz(s: MatStage): number {
  const n = s.outC * rowLength(s), mask = s.mask!;
  const fail = (why: string): never => {
    throw new Error(`deployed ${s.op} stage (${s.outC}x${rowLength(s)}, ${s.kernel}): sparse weights: ${why}`);
  };
  if (!(mask instanceof Uint32Array) || mask.length !== wordsFor(n)) fail(`mask has ${mask.length} words, expected ${wordsFor(n)}`);
  let nnz = 0;
  for (let t = 0; t < mask.length; t++) nnz += popcount32(mask[t]!);
  if (n % 32 && mask[mask.length - 1]! >>> (n % 32)) fail('mask bits set past the last weight');
  const want = s.kernel === 'ternary_weights' ? wordsFor(nnz) : nnz;
  if (s.weights.length !== want) fail(`${nnz} non-zeros need ${want} ${s.kernel === 'ternary_weights' ? 'sign words' : 'values'}, the stage has ${s.weights.length}`);
  if (s.kernel !== 'ternary_weights' && s.kernel !== 'float') fail(`kernel '${s.kernel}' has no sparse encoding`);
  return nnz;
}

/** The weight value of ternary code `c` (negative codes weigh −negRatio, TTQ). */
const ternaryValue = (s: MatStage, negative: boolean): number => (negative ? -(s.negRatio ?? 1) : 1);

/** Dense float32 weight rows [outC, rowLen] of a float, ternary or binary_weights stage (SBNN: its levels), in either encoding. */
export function denseWeights(s: MatStage): Float32Array {
  const n = s.outC * rowLength(s);
  if (!s.mask) {
    if (s.kernel === 'float') return s.weights as Float32Array;
    const w = unpackRows(s.weights as Uint32Array, s.outC, rowLength(s), s.kernel === 'ternary_weights' ? 'ternary' : 'binary');
    if (s.kernel === 'ternary_weights' && s.negRatio !== undefined) for (let i = 0; i < w.length; i++) if (w[i]! < 0) w[i] = -s.negRatio;
    if (s.kernel === 'binary_weights' && s.levels) for (let i = 0; i < w.length; i++) w[i] = s.levels[w[i]! < 0 ? 0 : 1]!;
    return w;
  }
  checkedNnz(s);
  const out = new Float32Array(n), mask = s.mask;
  for (let i = 0, j = 0; i < n; i++) {
    if (!((mask[i >>> 5]! >>> (i & 31)) & 1)) continue;
    out[i] = s.kernel === 'float' ? (s.weights as Float32Array)[j]! : ternaryValue(s, (((s.weights as Uint32Array)[j >>> 5]! >>> (j & 31)) & 1) === 1);
    j++;
  }
  return out;
}

/** Compressed sparse rows of a weight matrix: row r's non-zeros are values[rowPtr[r] .. rowPtr[r + 1]) at columns cols[...]. */
export interface Csr {
  rowPtr: Int32Array;
  cols: Int32Array;
  values: Float32Array;
}

/** CSR of dense rows [rows, k]. */
export function toCsr(w: Float32Array, rows: number, k: number): Csr {
  let nnz = 0;
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) nnz++;
  const rowPtr = new Int32Array(rows + 1), cols = new Int32Array(nnz), values = new Float32Array(nnz);
  let j = 0;
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < k; t++) {
      const v = w[r * k + t]!;
      if (v !== 0) (cols[j] = t), (values[j++] = v);
    }
    rowPtr[r + 1] = j;
  }
  return { rowPtr, cols, values };
}

/** Fraction of non-zero weights of a stage. */
export function density(s: MatStage): number {
  const n = s.outC * rowLength(s);
  if (s.mask) return checkedNnz(s) / n;
  const w = denseWeights(s);
  let nnz = 0;
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) nnz++;
  return nnz / n;
}

/**
 * Sparse × dense: out[b, o, q] = Σ_{j in row o} values[j]·x[b, cols[j], q] for x [batch, k, p]
 * (p contiguous); out [batch, rows, p]. The reference of the contract's sparseGemm.
 */
export function sparseGemm(rowPtr: Int32Array, cols: Int32Array, values: Float32Array, x: Float32Array, rows: number, k: number, p: number, batch = 1): Float32Array {
  const out = new Float32Array(batch * rows * p);
  for (let b = 0; b < batch; b++) for (let o = 0; o < rows; o++) {
    const dst = (b * rows + o) * p;
    for (let j = rowPtr[o]!; j < rowPtr[o + 1]!; j++) {
      const v = values[j]!, src = (b * k + cols[j]!) * p;
      // f32 product, then f32 sum (the Float32Array store rounds), as the wasm kernel.
      for (let q = 0; q < p; q++) out[dst + q] += Math.fround(v * x[src + q]!);
    }
  }
  return out;
}

/**
 * COMET / SZ-style error-bounded lossy compression (act.md §8.2) on plain arrays, in the
 * dual-quantization form of cuSZ: every value is first quantized on its own to the bin index
 * q = floor(x/2eb + 0.5) (float32 arithmetic), reconstructed as 2eb·q, and the prediction runs on
 * the integer indices — per block of 256 values, the zero predictor (q itself, which keeps exact
 * zeros such as ReLU outputs exact) or the 1-D Lorenzo predictor (q − q_prev), whichever has the
 * smaller sum of zig-zag residuals (SZ 2 picks its predictor per block from estimated errors too).
 * No value depends on another's reconstruction, so encoding is data-parallel (SIMD in the wasm
 * kernel) and the reconstruction is the same whichever predictor a block takes. The residuals are
 * entropy coded with Golomb-Rice (the best parameter k per block, the coder FLAC uses for
 * Laplacian residuals).
 * Guarantee: |x − x̂| ≤ eb for every element; a value whose reconstruction would miss the bound
 * (float rounding, |q| ≥ 2^24, NaN, ±Infinity) is stored verbatim as float32 (SZ's "unpredictable"
 * list) and counts as q = 0 for the next prediction.
 *
 * Stream: eb (float32, 4 bytes little-endian), the byte length of every chunk of CHUNK values
 * (uint32 LE each), then the chunks, each a byte-aligned bit stream (LSB first) whose prediction
 * starts from q = 0, so that chunks encode and decode independently (the wasm kernels split them
 * over the worker pool). In a chunk, per block: the predictor (1 bit: 0 = Lorenzo, 1 = zero), k
 * (5 bits), then per element either unary(r >> k) + 0 + the k low bits of the zig-zag residual r,
 * or ESCAPE ones, then 1 and r in 26 bits (a residual too long for unary), or 0 and the value's
 * 32 float32 bits (NaN as 0x7fc00000). kernels/comet.ts is the same codec in wasm, bit for bit.
 *
 * @example
 * const bytes = cometEncode(Float32Array.of(0, 0.1, 0.25), 0.01);
 * const back = new Float32Array(3);
 * cometDecode(bytes, back); // every |back[i] − x[i]| <= 0.01
 */
const BLOCK = 256;
const ESCAPE = 24;
/** Rice parameters are 5-bit fields; 29 is the largest a stream may hold (residuals stay below 2^26). */
const MAX_K = 29;
/** Bin indices stay below 2^24 in magnitude (exact in float32), residuals below 2^26. */
const Q_LIMIT = 2 ** 24;
const RESIDUAL_BITS = 26;
/** Residuals are capped at 2^22 in the block sums (predictor choice, mean for k). */
const SUM_CAP = 2 ** 22;
/** A residual list entry for a value stored verbatim. */
const VERBATIM = -1;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

class BitWriter {
  bytes: Uint8Array;
  private at = 0; // bytes flushed
  private acc = 0; // pending bits (fewer than 8 between calls)
  private n = 0;
  constructor(capacity: number) {
    this.bytes = new Uint8Array(Math.max(64, capacity));
  }
  /** Writes the low `n` (≤ 24) bits of v, LSB first. */
  bits(v: number, n: number): void {
    this.acc |= (v & ((1 << n) - 1)) << this.n;
    this.n += n;
    if (this.at + 4 >= this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    while (this.n >= 8) {
      this.bytes[this.at++] = this.acc & 255;
      this.acc >>>= 8;
      this.n -= 8;
    }
  }
  /** Writes the low `n` (≤ 32) bits of v. */
  long(v: number, n: number): void {
    if (n > 16) {
      this.bits(v & 0xffff, 16);
      this.bits(Math.floor(v / 65536), n - 16);
    } else this.bits(v, n);
  }
  finish(): Uint8Array {
    if (this.n > 0) this.bits(0, 8 - this.n);
    return this.bytes.slice(0, this.at);
  }
}

class BitReader {
  private at = 0; // next byte to load
  private acc = 0;
  private n = 0; // bits in acc
  private used = 0; // bits consumed
  constructor(private readonly bytes: Uint8Array) {}
  /** Loads until `want` (≤ 24) bits are buffered (zeros past the end; `take` checks). */
  private fill(want: number): void {
    while (this.n < want) {
      this.acc = (this.acc | ((this.bytes[this.at++] ?? 0) << this.n)) >>> 0;
      this.n += 8;
    }
  }
  private take(n: number): void {
    this.acc >>>= n;
    this.n -= n;
    this.used += n;
    if (this.used > this.bytes.length * 8) throw new RangeError(`comet decode: stream ends at byte ${this.bytes.length}`);
  }
  /** Reads `n` (≤ 24) bits. */
  bits(n: number): number {
    this.fill(n);
    const v = this.acc & ((1 << n) - 1);
    this.take(n);
    return v;
  }
  /** Reads `n` (≤ 32) bits. */
  long(n: number): number {
    return n > 16 ? this.bits(16) + this.bits(n - 16) * 65536 : this.bits(n);
  }
  /** Counts leading ones up to ESCAPE and consumes them with the terminating zero (none after ESCAPE ones). */
  unary(): number {
    this.fill(ESCAPE + 1);
    const inv = ~this.acc;
    const m = Math.min(ESCAPE, inv === 0 ? 32 : 31 - Math.clz32(inv & -inv));
    this.take(m < ESCAPE ? m + 1 : m);
    return m;
  }
}

const zigzag = (v: number) => (v >= 0 ? 2 * v : -2 * v - 1);
const unzigzag = (r: number) => (r % 2 === 0 ? r / 2 : -(r + 1) / 2);

/**
 * The bin index of v, or NaN where its reconstruction fround(width·q) would miss the bound:
 * float32 operations only (each a rounded JS operation), as the wasm kernel's f32x4 lanes. The
 * test |v − x̂| < bound in float32 is strict, so that it implies the exact one (rounding is
 * monotonic and the bound is a float32); v = x̂ passes too (bound 0).
 */
function binIndex(v: number, width: number, inv: number, bound: number): number {
  const q = Math.floor(Math.fround(Math.fround(v * inv) + 0.5));
  if (!(Math.abs(q) < Q_LIMIT)) return NaN;
  const r = Math.fround(width * q);
  return Math.abs(Math.fround(v - r)) < bound || v === r ? q : NaN;
}

/** Bits of one residual at Rice parameter k. */
function price(r: number, k: number): number {
  if (r === VERBATIM) return ESCAPE + 33;
  const m = Math.floor(r / 2 ** k);
  return m >= ESCAPE ? ESCAPE + 1 + RESIDUAL_BITS : m + 1 + k;
}

/** The best Rice parameter for the residuals (their capped sum given), searched at k0 − 1, k0, k0 + 1 around log2 of the mean; the lowest wins a tie. */
function riceParameter(res: Float64Array, n: number, sum: number): number {
  const mean1 = sum / n + 1;
  let k0 = 0;
  while (k0 < MAX_K && 2 ** (k0 + 1) <= mean1) k0++;
  const kLo = Math.max(0, k0 - 1), kHi = Math.min(MAX_K, k0 + 1);
  let best = Infinity, bestK = kLo;
  for (let k = kLo; k <= kHi; k++) {
    let bits = 0;
    for (let i = 0; i < n; i++) bits += price(res[i]!, k);
    if (bits < best) [best, bestK] = [bits, k];
  }
  return bestK;
}

/** Values per independently coded chunk. */
export const COMET_CHUNK = 256 * BLOCK;

export const chunkCount = (n: number) => Math.ceil(n / COMET_CHUNK);

/** Bytes of block scratch the wasm encoder keeps at the end of each chunk's region (kernels/comet.ts SCRATCH). */
export const COMET_SCRATCH = 2 * BLOCK * 4;

/** Bytes of scratch the wasm decoder needs per thread (kernels/comet.ts): its unary table (16 bytes per byte value) and one block of u8 residuals with 16 bytes of slack. */
export const COMET_DECODE_SCRATCH = 256 * 16 + BLOCK + 16;

const align8 = (n: number) => Math.ceil(n / 8) * 8;

/**
 * The stride of the wasm encoder's per-chunk output regions for n values: the largest chunk's
 * worst-case stream (6 header bits per block, ESCAPE + 33 bits per value), 8 bytes of slack for the
 * writer's 64-bit stores, and COMET_SCRATCH. (Its rounds of regions are the encoder's workspace.)
 */
export function cometRegionBytes(n: number): number {
  const m = Math.min(n, COMET_CHUNK);
  return align8(Math.ceil((6 * Math.ceil(m / BLOCK) + (ESCAPE + 33) * m) / 8) + 8) + COMET_SCRATCH;
}

/** The float32 bits the stream stores for a value (one NaN pattern). */
function f32Bits(v: number): number {
  if (v !== v) return 0x7fc00000;
  f32[0] = v;
  return u32[0]!;
}

/** Encodes x[from, to) (one chunk) from a zero prediction state. */
function encodeChunk(x: ArrayLike<number>, from: number, to: number, bound: number): Uint8Array {
  const w = new BitWriter((to - from) >>> 1);
  const width = Math.fround(2 * bound), inv = bound > 0 ? Math.fround(1 / width) : 0;
  const zero = new Float64Array(BLOCK), lorenzo = new Float64Array(BLOCK);
  let chain = 0; // the previous value's bin index (0 after a verbatim value)
  for (let start = from; start < to; start += BLOCK) {
    const n = Math.min(start + BLOCK, to) - start;
    let zeroSum = 0, lorenzoSum = 0;
    for (let i = 0; i < n; i++) {
      const q = binIndex(Math.fround(x[start + i]!), width, inv, bound);
      if (q !== q) {
        zero[i] = lorenzo[i] = VERBATIM;
        chain = 0;
      } else {
        zero[i] = zigzag(q);
        lorenzo[i] = zigzag(q - chain);
        zeroSum += Math.min(zero[i]!, SUM_CAP);
        lorenzoSum += Math.min(lorenzo[i]!, SUM_CAP);
        chain = q;
      }
    }
    const useZero = zeroSum <= lorenzoSum;
    const res = useZero ? zero : lorenzo;
    const k = riceParameter(res, n, useZero ? zeroSum : lorenzoSum);
    w.bits(useZero ? 1 : 0, 1);
    w.bits(k, 5);
    for (let i = 0; i < n; i++) {
      const r = res[i]!;
      const m = r === VERBATIM ? ESCAPE : Math.floor(r / 2 ** k);
      if (m >= ESCAPE) {
        w.bits((1 << ESCAPE) - 1, ESCAPE);
        if (r === VERBATIM) {
          w.bits(0, 1);
          w.long(f32Bits(Math.fround(x[start + i]!)), 32);
        } else {
          w.bits(1, 1);
          w.long(r, RESIDUAL_BITS);
        }
      } else {
        w.bits((1 << m) - 1, m + 1); // m ones and the terminating zero
        if (k > 0) w.long(r - m * 2 ** k, k);
      }
    }
  }
  return w.finish();
}

/** Encodes `x` within the absolute bound `eb` (≥ 0; rounded to float32). */
export function cometEncode(x: ArrayLike<number>, eb: number): Uint8Array {
  if (!(eb >= 0) || !Number.isFinite(eb)) throw new RangeError(`comet: error bound must be a finite number >= 0, got ${eb}`);
  const bound = Math.fround(eb);
  const chunks: Uint8Array[] = [];
  for (let from = 0; from < x.length; from += COMET_CHUNK) chunks.push(encodeChunk(x, from, Math.min(from + COMET_CHUNK, x.length), bound));
  return cometAssemble(bound, chunks);
}

/** The stream of coded chunks: the bound (rounded to float32), the chunk table, the chunks. */
function cometAssemble(bound: number, chunks: readonly Uint8Array[]): Uint8Array {
  const head = 4 + 4 * chunks.length;
  const out = new Uint8Array(head + chunks.reduce((s, c) => s + c.length, 0));
  const view = new DataView(out.buffer);
  view.setFloat32(0, Math.fround(bound), true);
  let at = head;
  chunks.forEach((c, i) => {
    view.setUint32(4 + 4 * i, c.length, true);
    out.set(c, at);
    at += c.length;
  });
  return out;
}

/** The absolute bound a stream was encoded with. */
export function cometBound(bytes: Uint8Array): number {
  if (bytes.length < 4) throw new RangeError(`comet decode: stream ends at byte ${bytes.length}`);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getFloat32(0, true);
}

/**
 * Where each chunk of an n-value stream starts, with a final entry at its end; throws a RangeError
 * when the stream is shorter than its chunk table says.
 */
export function cometChunkOffsets(bytes: Uint8Array, n: number): number[] {
  const chunks = chunkCount(n), head = 4 + 4 * chunks;
  if (bytes.length < head) throw new RangeError(`comet decode: stream ends at byte ${bytes.length}, its chunk table needs ${head}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const offsets = [head];
  for (let c = 0; c < chunks; c++) offsets.push(offsets[c]! + view.getUint32(4 + 4 * c, true));
  if (offsets[chunks]! > bytes.length) throw new RangeError(`comet decode: stream ends at byte ${bytes.length}, its chunks need ${offsets[chunks]}`);
  return offsets;
}

/** Decodes `out.length` values (throws a RangeError on a truncated or corrupt stream). */
export function cometDecode(bytes: Uint8Array, out: Float32Array | Float64Array): void {
  const width = Math.fround(2 * cometBound(bytes));
  const offsets = cometChunkOffsets(bytes, out.length);
  for (let c = 0; c + 1 < offsets.length; c++) {
    const r = new BitReader(bytes.subarray(offsets[c]!, offsets[c + 1]!));
    const to = Math.min(out.length, (c + 1) * COMET_CHUNK);
    let chain = 0;
    for (let start = c * COMET_CHUNK; start < to; start += BLOCK) {
      const end = Math.min(start + BLOCK, to);
      const zero = r.bits(1) === 1;
      const k = r.bits(5);
      if (k > MAX_K) throw new RangeError(`comet decode: Rice parameter ${k} at block ${start / BLOCK} exceeds ${MAX_K}`);
      for (let i = start; i < end; i++) {
        const m = r.unary();
        let res: number;
        if (m >= ESCAPE) {
          if (r.bits(1) === 0) {
            u32[0] = r.long(32);
            out[i] = f32[0]!;
            chain = 0;
            continue;
          }
          res = r.long(RESIDUAL_BITS);
        } else res = m * 2 ** k + r.long(k);
        chain = unzigzag(res) + (zero ? 0 : chain);
        out[i] = Math.fround(width * chain);
      }
    }
  }
}

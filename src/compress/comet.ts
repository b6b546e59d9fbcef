/**
 * COMET / SZ-style error-bounded lossy compression (act.md §8.2) on plain arrays: per block of
 * 256 values, prediction — the 1-D Lorenzo predictor (the previous *reconstructed* value) or the
 * zero predictor (plain linear quantization, which keeps exact zeros such as ReLU outputs exact),
 * whichever has the smaller estimated residuals, as SZ 2 picks Lorenzo or regression per block —, linear-
 * scaling quantization of the residual into bins of width 2·eb, and entropy coding of the bin
 * indices (zig-zag, then Golomb-Rice with the best parameter k per block, the coder FLAC uses for
 * Laplacian residuals).
 * Guarantee: |x − x̂| ≤ eb for every element; a value whose reconstruction would miss the bound
 * (float rounding, huge residuals, NaN) is stored verbatim as float32 (SZ's "unpredictable" list).
 *
 * Stream: eb (float32, 4 bytes little-endian), the byte length of every chunk of CHUNK values
 * (uint32 LE each), then the chunks, each a byte-aligned bit stream (LSB first) whose prediction
 * starts from 0, so that chunks encode and decode independently (the wasm kernels split them over
 * the worker pool). In a chunk, per block: the predictor (1 bit: 0 = Lorenzo, 1 = zero), k (5
 * bits), then per element either unary(q >> k) + 0 + the k low bits of q, or ESCAPE ones + the 32
 * bits of x̂ as float32 (NaN as 0x7fc00000). kernels/comet.ts is the same codec in wasm, bit for bit.
 *
 * @example
 * const bytes = cometEncode(Float32Array.of(0, 0.1, 0.25), 0.01);
 * const back = new Float32Array(3);
 * cometDecode(bytes, back); // every |back[i] − x[i]| <= 0.01
 */
const BLOCK = 256;
const ESCAPE = 24;
/** Rice parameters are 5-bit fields; 29 keeps q >> k within ESCAPE for every index below 2^30. */
const MAX_K = 29;
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
  word(v: number): void {
    this.bits(v & 0xffff, 16);
    this.bits(v >>> 16, 16);
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
  word(): number {
    return (this.bits(16) | (this.bits(16) << 16)) >>> 0;
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

/** Per block: zig-zag indices (-1 = escape) and reconstructions under the chosen predictor, and its price. */
interface Candidate {
  q: Float64Array;
  rec: Float32Array;
  bits: number;
  k: number;
}

/**
 * The predictor for x[start, end): zero when Σ|round(x/2eb)| is at most the Lorenzo estimate
 * Σ|round((x_i − x_{i−1})/2eb)| (from the original values: no dependency between elements, so it
 * vectorizes; the block's first difference is taken from `prev`). SZ 2 likewise picks Lorenzo or
 * regression per block from estimated errors instead of coding both.
 */
function zeroPredicts(x: ArrayLike<number>, start: number, end: number, prev: number, inv: number): boolean {
  let zero = 0, lorenzo = 0, last = prev;
  for (let i = start; i < end; i++) {
    const v = Math.fround(x[i]!);
    zero += Math.abs(Math.floor(v * inv + 0.5));
    lorenzo += Math.abs(Math.floor((v - last) * inv + 0.5));
    last = v;
  }
  return zero <= lorenzo;
}

/**
 * Quantizes x[start, end) against a predictor (Lorenzo from `prev`, or zero) and prices it with
 * the best Rice parameter, searched around log2 of the mean index. Only IEEE operations (no
 * Math.round / Math.log2, whose last bits engines may differ in), so the wasm kernel matches it.
 */
function quantizeBlock(x: ArrayLike<number>, start: number, end: number, prev: number, lorenzo: boolean, bound: number, c: Candidate): void {
  const width = 2 * bound, inv = bound > 0 ? 1 / width : 0;
  let p = prev, sum = 0;
  for (let i = start; i < end; i++) {
    const v = Math.fround(x[i]!);
    const base = lorenzo ? p : 0;
    const idx = Math.floor((v - base) * inv + 0.5);
    const r = Math.fround(base + width * idx);
    const j = i - start;
    if (Math.abs(v - r) <= bound && Math.abs(idx) < 2 ** 30) {
      c.q[j] = idx >= 0 ? 2 * idx : -2 * idx - 1;
      sum += c.q[j]!;
      p = r;
    } else {
      c.q[j] = -1;
      p = v;
    }
    c.rec[j] = p;
  }
  const n = end - start, mean1 = sum / n + 1;
  let k0 = 0;
  while (k0 < MAX_K && 2 ** (k0 + 1) <= mean1) k0++;
  // Bits at k0 − 1, k0, k0 + 1 in one pass (the lowest k wins a tie).
  const kLo = Math.max(0, k0 - 1), kHi = Math.min(MAX_K, k0 + 1);
  const total = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const qi = c.q[i]!;
    for (let k = kLo; k <= kHi; k++) {
      const m = qi < 0 ? ESCAPE : Math.floor(qi * 2 ** -k);
      total[k - kLo] += m >= ESCAPE ? ESCAPE + 32 : m + 1 + k;
    }
  }
  c.bits = Infinity;
  for (let k = kLo; k <= kHi; k++) {
    if (total[k - kLo]! < c.bits) {
      c.bits = total[k - kLo]!;
      c.k = k;
    }
  }
}

const candidate = (): Candidate => ({ q: new Float64Array(BLOCK), rec: new Float32Array(BLOCK), bits: 0, k: 0 });

/** Values per independently coded chunk. */
export const COMET_CHUNK = 256 * BLOCK;

export const chunkCount = (n: number) => Math.ceil(n / COMET_CHUNK);

/** Bytes of block scratch the wasm encoder keeps at the end of each chunk's region (kernels/comet.ts SCRATCH). */
export const COMET_SCRATCH = 2 * BLOCK * 4;

const align8 = (n: number) => Math.ceil(n / 8) * 8;

/**
 * The stride of the wasm encoder's per-chunk output regions for n values: the largest chunk's
 * worst-case stream (6 header bits per block, ESCAPE + 32 bits per value) and COMET_SCRATCH.
 * (Its rounds of regions are the encoder's workspace.)
 */
export function cometRegionBytes(n: number): number {
  const m = Math.min(n, COMET_CHUNK);
  return align8(Math.ceil((6 * Math.ceil(m / BLOCK) + (ESCAPE + 32) * m) / 8) + 8) + COMET_SCRATCH;
}

/** The float32 bits the stream stores for a reconstruction (one NaN pattern). */
function f32Bits(v: number): number {
  if (v !== v) return 0x7fc00000;
  f32[0] = v;
  return u32[0]!;
}

/** Encodes x[from, to) (one chunk) from a zero prediction state. */
function encodeChunk(x: ArrayLike<number>, from: number, to: number, bound: number, c: Candidate): Uint8Array {
  const w = new BitWriter((to - from) >>> 1);
  const inv = bound > 0 ? 1 / (2 * bound) : 0;
  let prev = 0;
  for (let start = from; start < to; start += BLOCK) {
    const end = Math.min(start + BLOCK, to);
    const useZero = zeroPredicts(x, start, end, prev, inv);
    quantizeBlock(x, start, end, prev, !useZero, bound, c);
    const k = c.k;
    w.bits(useZero ? 1 : 0, 1);
    w.bits(k, 5);
    const scale = 2 ** -k;
    for (let i = 0; i < end - start; i++) {
      const qi = c.q[i]!;
      const m = qi < 0 ? ESCAPE : Math.floor(qi * scale);
      if (m >= ESCAPE) {
        // Verbatim: the value quantizeBlock reconstructed (x itself, or its in-bound bin), so later predictions agree.
        w.bits((1 << ESCAPE) - 1, ESCAPE);
        w.word(f32Bits(c.rec[i]!));
      } else {
        w.bits((1 << m) - 1, m + 1); // m ones and the terminating zero
        if (k > 0) {
          const low = qi - m * 2 ** k;
          if (k > 16) {
            w.bits(low % 65536, 16);
            w.bits(Math.floor(low / 65536), k - 16);
          } else w.bits(low, k);
        }
      }
    }
    prev = c.rec[end - start - 1]!;
  }
  return w.finish();
}

/** Encodes `x` within the absolute bound `eb` (≥ 0; rounded to float32). */
export function cometEncode(x: ArrayLike<number>, eb: number): Uint8Array {
  if (!(eb >= 0) || !Number.isFinite(eb)) throw new RangeError(`comet: error bound must be a finite number >= 0, got ${eb}`);
  const bound = Math.fround(eb);
  const c = candidate();
  const chunks: Uint8Array[] = [];
  for (let from = 0; from < x.length; from += COMET_CHUNK) chunks.push(encodeChunk(x, from, Math.min(from + COMET_CHUNK, x.length), bound, c));
  return cometAssemble(bound, chunks);
}

/** The stream of coded chunks: the bound (rounded to float32), the chunk table, the chunks. */
export function cometAssemble(bound: number, chunks: readonly Uint8Array[]): Uint8Array {
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
  const width = 2 * cometBound(bytes);
  const offsets = cometChunkOffsets(bytes, out.length);
  for (let c = 0; c + 1 < offsets.length; c++) {
    const r = new BitReader(bytes.subarray(offsets[c]!, offsets[c + 1]!));
    const to = Math.min(out.length, (c + 1) * COMET_CHUNK);
    let prev = 0;
    for (let start = c * COMET_CHUNK; start < to; start += BLOCK) {
      const end = Math.min(start + BLOCK, to);
      const zero = r.bits(1) === 1;
      const k = r.bits(5);
      if (k > MAX_K) throw new RangeError(`comet decode: Rice parameter ${k} at block ${start / BLOCK} exceeds ${MAX_K}`);
      for (let i = start; i < end; i++) {
        const m = r.unary();
        if (m >= ESCAPE) {
          u32[0] = r.word();
          prev = f32[0]!;
        } else {
          const low = k > 16 ? r.bits(16) + r.bits(k - 16) * 65536 : r.bits(k);
          const qi = m * 2 ** k + low;
          const idx = qi % 2 === 0 ? qi / 2 : -(qi + 1) / 2;
          prev = Math.fround((zero ? 0 : prev) + width * idx);
        }
        out[i] = prev;
      }
    }
  }
}

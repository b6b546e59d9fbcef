/**
 * COMET / SZ-style error-bounded lossy compression (act.md §8.2) on plain arrays: per block of
 * 256 values, prediction — the 1-D Lorenzo predictor (the previous *reconstructed* value) or the
 * zero predictor (plain linear quantization, which keeps exact zeros such as ReLU outputs exact),
 * whichever codes the block in fewer bits, as SZ 2 picks Lorenzo or regression per block —, linear-
 * scaling quantization of the residual into bins of width 2·eb, and entropy coding of the bin
 * indices (zig-zag, then Golomb-Rice with the best parameter k per block, the coder FLAC uses for
 * Laplacian residuals).
 * Guarantee: |x − x̂| ≤ eb for every element; a value whose reconstruction would miss the bound
 * (float rounding, huge residuals, NaN) is stored verbatim as float32 (SZ's "unpredictable" list).
 *
 * Stream (bits LSB first): eb (float32 bits, 32), then per block: the predictor (1 bit: 0 =
 * Lorenzo, 1 = zero), k (5 bits), then per element either unary(q >> k) + 0 + the k low bits of
 * q, or ESCAPE ones + the 32 float32 bits of x̂.
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

/** Per block: zig-zag indices (-1 = escape) and reconstructions under one predictor. */
interface Candidate {
  q: Float64Array;
  rec: Float32Array;
  bits: number;
  k: number;
}

/**
 * Quantizes x[start, end) against a predictor (Lorenzo from `prev`, or zero) and prices it with
 * the best Rice parameter, searched around log2 of the mean index.
 */
function quantizeBlock(x: ArrayLike<number>, start: number, end: number, prev: number, lorenzo: boolean, bound: number, c: Candidate): void {
  const width = 2 * bound, inv = bound > 0 ? 1 / width : 0;
  let p = prev, sum = 0;
  for (let i = start; i < end; i++) {
    const v = Math.fround(x[i]!);
    const base = lorenzo ? p : 0;
    const idx = Math.round((v - base) * inv);
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
  const n = end - start;
  const k0 = Math.max(0, Math.min(MAX_K, Math.floor(Math.log2(sum / n + 1))));
  c.bits = Infinity;
  for (let k = Math.max(0, k0 - 1); k <= Math.min(MAX_K, k0 + 1); k++) {
    let total = 0;
    const scale = 2 ** -k;
    for (let i = 0; i < n; i++) {
      const m = c.q[i]! < 0 ? ESCAPE : Math.floor(c.q[i]! * scale);
      total += m >= ESCAPE ? ESCAPE + 32 : m + 1 + k;
    }
    if (total < c.bits) {
      c.bits = total;
      c.k = k;
    }
  }
}

const candidate = (): Candidate => ({ q: new Float64Array(BLOCK), rec: new Float32Array(BLOCK), bits: 0, k: 0 });

/** Encodes `x` within the absolute bound `eb` (≥ 0; rounded to float32). */
export function cometEncode(x: ArrayLike<number>, eb: number): Uint8Array {
  if (!(eb >= 0) || !Number.isFinite(eb)) throw new RangeError(`comet: error bound must be a finite number >= 0, got ${eb}`);
  const bound = Math.fround(eb);
  const w = new BitWriter(x.length >>> 1);
  f32[0] = bound;
  w.word(u32[0]!);
  const lorenzo = candidate(), zero = candidate();
  let prev = 0;
  for (let start = 0; start < x.length; start += BLOCK) {
    const end = Math.min(start + BLOCK, x.length);
    quantizeBlock(x, start, end, prev, true, bound, lorenzo);
    quantizeBlock(x, start, end, prev, false, bound, zero);
    const useZero = zero.bits < lorenzo.bits;
    const c = useZero ? zero : lorenzo, k = c.k;
    w.bits(useZero ? 1 : 0, 1);
    w.bits(k, 5);
    const scale = 2 ** -k;
    for (let i = 0; i < end - start; i++) {
      const qi = c.q[i]!;
      const m = qi < 0 ? ESCAPE : Math.floor(qi * scale);
      if (m >= ESCAPE) {
        // Verbatim: the value quantizeBlock reconstructed (x itself, or its in-bound bin), so later predictions agree.
        w.bits((1 << ESCAPE) - 1, ESCAPE);
        f32[0] = c.rec[i]!;
        w.word(u32[0]!);
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

/** The absolute bound a stream was encoded with. */
export function cometBound(bytes: Uint8Array): number {
  u32[0] = new BitReader(bytes).word();
  return f32[0]!;
}

/** Decodes `out.length` values (throws a RangeError on a truncated stream). */
export function cometDecode(bytes: Uint8Array, out: Float32Array | Float64Array): void {
  const r = new BitReader(bytes);
  u32[0] = r.word();
  const width = 2 * f32[0]!;
  let prev = 0;
  for (let start = 0; start < out.length; start += BLOCK) {
    const end = Math.min(start + BLOCK, out.length);
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

/**
 * COMET / SZ-style error-bounded lossy compression (act.md §8.2) on plain arrays: 1-D Lorenzo
 * prediction from the previous *reconstructed* value, linear-scaling quantisation of the residual
 * into bins of width 2·eb, and entropy coding of the bin indices (zig-zag, then Golomb-Rice with
 * the best parameter k per block of 256, the coder FLAC uses for Laplacian residuals).
 * Guarantee: |x − x̂| ≤ eb for every element; a value whose reconstruction would miss the bound
 * (float rounding, huge residuals) is stored verbatim as float32 (SZ's "unpredictable" list).
 *
 * Stream: eb (float32 bits, 32), then per block: k (5 bits), then per element either
 * unary(q >> k) + 0 + the k low bits of q, or ESCAPE ones + the 32 float32 bits of x.
 *
 * @example
 * const bytes = cometEncode(Float32Array.of(0, 0.1, 0.25), 0.01);
 * const back = new Float32Array(3);
 * cometDecode(bytes, back); // every |back[i] − x[i]| <= 0.01
 */
const BLOCK = 256;
const ESCAPE = 24;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

class BitWriter {
  bytes: Uint8Array;
  pos = 0; // bits written
  constructor(capacity: number) {
    this.bytes = new Uint8Array(Math.max(64, capacity));
  }
  private reserve(bits: number): void {
    const need = ((this.pos + bits + 7) >>> 3) + 1;
    if (need <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(need, this.bytes.length * 2));
    grown.set(this.bytes);
    this.bytes = grown;
  }
  /** Writes the low `n` (≤ 32) bits of v, LSB first. */
  bits(v: number, n: number): void {
    this.reserve(n);
    for (let i = 0; i < n; i++) {
      if ((v >>> i) & 1) this.bytes[this.pos >>> 3]! |= 1 << (this.pos & 7);
      this.pos++;
    }
  }
  ones(n: number): void {
    this.reserve(n + 1);
    for (let i = 0; i < n; i++, this.pos++) this.bytes[this.pos >>> 3]! |= 1 << (this.pos & 7);
  }
  finish(): Uint8Array {
    return this.bytes.slice(0, (this.pos + 7) >>> 3);
  }
}

class BitReader {
  pos = 0;
  constructor(private readonly bytes: Uint8Array) {}
  bit(): number {
    const byte = this.pos >>> 3;
    if (byte >= this.bytes.length) throw new RangeError(`comet decode: stream ends at byte ${this.bytes.length}`);
    return (this.bytes[byte]! >>> (this.pos++ & 7)) & 1;
  }
  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v |= this.bit() << i;
    return v >>> 0;
  }
}

/** Encodes `x` within the absolute bound `eb` (≥ 0; rounded to float32). */
export function cometEncode(x: ArrayLike<number>, eb: number): Uint8Array {
  if (!(eb >= 0) || !Number.isFinite(eb)) throw new RangeError(`comet: error bound must be a finite number >= 0, got ${eb}`);
  const bound = Math.fround(eb);
  const w = new BitWriter(x.length >>> 1);
  f32[0] = bound;
  w.bits(u32[0]!, 32);
  const width = 2 * bound, inv = bound > 0 ? 1 / width : 0;
  const q = new Float64Array(BLOCK); // zig-zag indices of a block; -1 marks an escape
  const rec = new Float32Array(BLOCK); // the reconstructions pass 1 predicted from
  let prev = 0;
  for (let start = 0; start < x.length; start += BLOCK) {
    const end = Math.min(start + BLOCK, x.length);
    // Pass 1: indices from the reconstructed predictions (independent of k).
    let p = prev;
    for (let i = start; i < end; i++) {
      const v = Math.fround(x[i]!);
      const idx = Math.round((v - p) * inv);
      const r = Math.fround(p + width * idx);
      if (Math.abs(v - r) <= bound && Math.abs(idx) < 2 ** 30) {
        q[i - start] = idx >= 0 ? 2 * idx : -2 * idx - 1;
        p = r;
      } else {
        q[i - start] = -1;
        p = v;
      }
      rec[i - start] = p;
    }
    // The Rice parameter with the fewest bits, searched around log2 of the mean index.
    let sum = 0;
    for (let i = 0; i < end - start; i++) sum += Math.max(q[i]!, 0);
    const k0 = Math.max(0, Math.min(29, Math.floor(Math.log2(sum / (end - start) + 1))));
    let bestK = 0, bestBits = Infinity;
    for (let k = Math.max(0, k0 - 1); k <= k0 + 1; k++) {
      let total = 0;
      for (let i = 0; i < end - start; i++) {
        const m = q[i]! < 0 ? ESCAPE : Math.floor(q[i]! / 2 ** k);
        total += m >= ESCAPE ? ESCAPE + 32 : m + 1 + k;
      }
      if (total < bestBits) {
        bestBits = total;
        bestK = k;
      }
    }
    w.bits(bestK, 5);
    for (let i = start; i < end; i++) {
      const qi = q[i - start]!;
      const m = qi < 0 ? ESCAPE : Math.floor(qi / 2 ** bestK);
      if (m >= ESCAPE) {
        // Verbatim: the value pass 1 reconstructed (x itself, or its in-bound bin), so later predictions agree.
        w.ones(ESCAPE);
        f32[0] = rec[i - start]!;
        w.bits(u32[0]!, 32);
      } else {
        w.ones(m);
        w.bits(0, 1);
        w.bits(qi - m * 2 ** bestK, bestK);
      }
    }
    prev = rec[end - start - 1]!;
  }
  return w.finish();
}

/** The absolute bound a stream was encoded with. */
export function cometBound(bytes: Uint8Array): number {
  u32[0] = new BitReader(bytes).bits(32);
  return f32[0]!;
}

/** Decodes `out.length` values (throws a RangeError on a truncated stream). */
export function cometDecode(bytes: Uint8Array, out: Float32Array | Float64Array): void {
  const r = new BitReader(bytes);
  u32[0] = r.bits(32);
  const width = 2 * f32[0]!;
  let prev = 0;
  for (let start = 0; start < out.length; start += BLOCK) {
    const end = Math.min(start + BLOCK, out.length);
    const k = r.bits(5);
    for (let i = start; i < end; i++) {
      let m = 0;
      while (m < ESCAPE && r.bit()) m++;
      if (m >= ESCAPE) {
        u32[0] = r.bits(32);
        prev = f32[0]!;
      } else {
        const qi = m * 2 ** k + r.bits(k);
        const idx = qi % 2 === 0 ? qi / 2 : -(qi + 1) / 2;
        prev = Math.fround(prev + width * idx);
      }
      out[i] = prev;
    }
  }
}

/**
 * Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). A value depends only on
 * (key, counter), so streams can be split, skipped and regenerated: dropout regenerates its mask
 * from a seed instead of saving it, and stochastic rounding is keyed by (tensor, step, element).
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

function mulhi(a: number, b: number): number {
  // High 32 bits of the 64-bit product of two uint32 values, exactly, with 16-bit halves.
  const aL = a & 0xffff, aH = a >>> 16, bL = b & 0xffff, bH = b >>> 16;
  const lo = aL * bL;
  const mid1 = aH * bL, mid2 = aL * bH;
  const carry = ((lo >>> 16) + (mid1 & 0xffff) + (mid2 & 0xffff)) >>> 16;
  return (aH * bH + (mid1 >>> 16) + (mid2 >>> 16) + carry) >>> 0;
}

/** Philox4x32-10 block: four uint32 outputs for counter (c0..c3) and key (k0, k1). */
export function philox(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array): void {
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, c0), lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2), lo1 = Math.imul(M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0, n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 = (k0 + W0) >>> 0; k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

const INV_2_32 = 1 / 4294967296;

/** Derived draws (integers, permutations) shared by every uniform source. */
export abstract class UniformSource {
  /** Uniform in [0, 1). */
  abstract uniform(): number;

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Fisher-Yates permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]!; p[i] = p[j]!; p[j] = t;
    }
    return p;
  }
}

/**
 * A stream of random numbers for one seed. `stream` separates independent uses of the same seed
 * (e.g. weight init vs dropout vs data shuffling).
 */
export class Rng extends UniformSource {
  private counter = 0;
  private readonly block = new Uint32Array(4);
  private used = 4;
  private readonly k0: number;
  private readonly k1: number;

  constructor(seed: number, stream = 0) {
    super();
    if (!Number.isInteger(seed)) throw new TypeError(`Rng: seed must be an integer, got ${seed}`);
    this.k0 = seed >>> 0;
    this.k1 = (Math.floor(seed / 4294967296) ^ Math.imul(stream, 0x85ebca6b)) >>> 0;
  }

  nextU32(): number {
    if (this.used === 4) {
      philox(this.counter >>> 0, Math.floor(this.counter / 4294967296) >>> 0, 0, 0, this.k0, this.k1, this.block);
      this.counter++;
      this.used = 0;
    }
    return this.block[this.used++]!;
  }

  uniform(): number {
    return this.nextU32() * INV_2_32;
  }

  /** How many 32-bit words this stream has produced (its resumable state). */
  get position(): number {
    return this.counter * 4 - (4 - this.used);
  }

  /** Continues the stream at word `position` (a value `position` returned), e.g. when resuming training. */
  seek(position: number): void {
    if (!Number.isSafeInteger(position) || position < 0) throw new RangeError(`Rng.seek: position must be a non-negative integer, got ${position}`);
    this.counter = Math.floor(position / 4);
    this.used = 4;
    for (let i = position % 4; i > 0; i--) this.nextU32();
  }

  /** Standard normal (Box-Muller; uses two uniforms per call for simplicity and determinism). */
  normal(): number {
    const u1 = (this.nextU32() + 1) * INV_2_32; // (0, 1]
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

}

/** Uniform [0,1) values for elements [start, start+n) of the stream keyed by (seed, salt). */
export function uniformAt(seed: number, salt: number, start: number, n: number, out: Float32Array | Float64Array): void {
  const block = new Uint32Array(4);
  const k0 = seed >>> 0, k1 = salt >>> 0;
  let i = 0;
  let idx = start;
  // Element e uses word (e & 3) of block (e >> 2): the same element always gets the same number.
  while (i < n) {
    const blockIndex = Math.floor(idx / 4);
    philox(blockIndex >>> 0, Math.floor(blockIndex / 4294967296) >>> 0, 0, 0, k0, k1, block);
    for (let w = idx & 3; w < 4 && i < n; w++, i++, idx++) out[i] = block[w]! * INV_2_32;
  }
}

/**
 * Counter-based random numbers for the data layer, kept apart from every `Rng` stream: draw k
 * for the pair (a, b) is word k%4 of the Philox block at counter (a, b, k/4, domain) under the
 * seed's key. `Rng` keeps counter words 2 and 3 at zero, so a nonzero domain never repeats its
 * numbers: shuffling with seed 1 is not correlated with weights initialised from seed 1.
 */
import { philox, UniformSource } from '../util/rng.js';

const INV_2_32 = 1 / 4294967296;

/** Counter word 3 of each use of KeyedRandom in the data layer. */
export const RANDOM_DOMAINS = { augmentation: 1, shuffle: 2, synthetic: 3 } as const;

export class KeyedRandom extends UniformSource {
  private readonly k0: number;
  private readonly k1: number;
  private readonly block = new Uint32Array(4);
  private a = 0;
  private b = 0;
  private draws = 0;

  constructor(
    seed: number,
    readonly domain: number,
  ) {
    super();
    if (!Number.isInteger(seed)) throw new TypeError(`KeyedRandom: seed must be an integer, got ${seed}`);
    this.k0 = seed >>> 0;
    this.k1 = Math.floor(seed / 4294967296) >>> 0;
  }

  /** Starts the draws for (a, b), e.g. (epoch, item index) or (item index, 0). */
  reset(a: number, b: number): void {
    this.a = a >>> 0;
    this.b = b >>> 0;
    this.draws = 0;
  }

  uniform(): number {
    const word = this.draws & 3;
    if (word === 0) philox(this.a, this.b, this.draws / 4, this.domain, this.k0, this.k1, this.block);
    this.draws++;
    return this.block[word]! * INV_2_32;
  }
}

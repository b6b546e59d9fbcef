/**
 * Cooperative games for Shapley explanations. A game maps coalitions (0/1 masks over players) to
 * values, many coalitions per call so that model evaluations are batched.
 */

/**
 * A batched model: `batch` holds `rows` inputs row-major (rows × inputSize, float64); returns one
 * output per row. Any JS function of this shape can be explained.
 */
export type BatchedModel = (batch: Float64Array, rows: number) => ArrayLike<number>;

/** A contiguous block of input columns [start, end) that acts as one player (a one-hot block, or one column). */
export interface PlayerGroup {
  name: string;
  start: number;
  end: number;
}

/** A cooperative game over `players` players, evaluated in batches. */
export interface CooperativeGame {
  readonly players: number;
  /**
   * Values of `count` coalitions. `masks` is count × players row-major, 1 = player present.
   * Returns a fresh Float64Array of length `count`.
   */
  values(masks: Uint8Array, count: number): Float64Array;
}

/** Options of a {@link ModelGame}: which inputs replace absent players. */
export interface ModelGameOptions {
  /** Players as column blocks; default one player per input column. Must tile 0..inputSize without overlap. */
  groups?: readonly PlayerGroup[];
  /** Single-reference game: absent players take these values (length inputSize). */
  reference?: Float64Array;
  /**
   * Background game: v(S) = mean over background rows b of f(x_S, b_absent) (rows × inputSize,
   * row-major). Each coalition costs `backgroundRows` model rows. Exactly one of reference/background.
   */
  background?: Float64Array;
  /** Largest number of model rows per model call (default 8192). */
  maxBatchRows?: number;
}

/** Checks that groups tile [0, width) in order without gaps or overlaps; returns them (or one per column). */
export function normalizeGroups(width: number, groups?: readonly PlayerGroup[]): PlayerGroup[] {
  if (!groups) return Array.from({ length: width }, (_, c) => ({ name: `x${c}`, start: c, end: c + 1 }));
  if (groups.length === 0) throw new RangeError('explain: groups must not be empty');
  const covered = new Uint8Array(width);
  for (const g of groups) {
    if (!(Number.isInteger(g.start) && Number.isInteger(g.end) && g.start >= 0 && g.end <= width && g.start < g.end)) {
      throw new RangeError(`explain: group '${g.name}' has column range [${g.start}, ${g.end}) outside the ${width} input columns or empty`);
    }
    for (let c = g.start; c < g.end; c++) {
      if (covered[c]) throw new RangeError(`explain: column ${c} belongs to more than one group (group '${g.name}')`);
      covered[c] = 1;
    }
  }
  const missing = covered.indexOf(0);
  if (missing >= 0) throw new RangeError(`explain: column ${missing} belongs to no group; groups must cover all ${width} input columns`);
  return groups.map((g) => ({ name: g.name, start: g.start, end: g.end }));
}

/**
 * The game of explaining model output f(x): v(S) = f(z) where z takes x on the players in S and the
 * reference (or each background row, averaged) elsewhere. Counts coalition evaluations and model rows.
 * @example
 * const game = new ModelGame(model, x, { reference: r });
 * game.values(new Uint8Array([1, 0, 1]), 1) // f(x0, r1, x2)
 */
export class ModelGame implements CooperativeGame {
  readonly players: number;
  readonly groups: PlayerGroup[];
  /** Coalitions evaluated so far. */
  evaluations = 0;
  /** Model rows evaluated so far (evaluations × background rows). */
  modelRows = 0;
  private readonly base: Float64Array;
  private readonly baseRows: number;
  private readonly maxBatchRows: number;

  constructor(
    readonly model: BatchedModel,
    readonly x: Float64Array,
    options: ModelGameOptions,
  ) {
    const width = x.length;
    if (width === 0) throw new RangeError('explain: the explained row is empty');
    this.groups = normalizeGroups(width, options.groups);
    this.players = this.groups.length;
    if ((options.reference === undefined) === (options.background === undefined)) {
      throw new RangeError('explain: give exactly one of reference (a single row) or background (rows)');
    }
    const base = options.reference ?? options.background!;
    if (base.length === 0 || base.length % width !== 0) {
      throw new RangeError(`explain: ${options.reference ? 'reference' : 'background'} has ${base.length} values, not a multiple of the ${width} input columns`);
    }
    if (options.reference && base.length !== width) throw new RangeError(`explain: reference has ${base.length} values, the row has ${width}`);
    for (const arr of [x, base]) {
      const bad = arr.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new RangeError(`explain: ${arr === x ? 'explained row' : 'reference/background'} has a non-finite value at index ${bad}`);
    }
    this.base = base;
    this.baseRows = base.length / width;
    this.maxBatchRows = Math.max(this.baseRows, options.maxBatchRows ?? 8192);
  }

  /** Row (or mean background row) that absent players take: the r of r→x interpolation. */
  referenceRow(): Float64Array {
    const width = this.x.length;
    const r = new Float64Array(width);
    for (let b = 0; b < this.baseRows; b++) for (let c = 0; c < width; c++) r[c]! += this.base[b * width + c]!;
    for (let c = 0; c < width; c++) r[c]! /= this.baseRows;
    return r;
  }

  values(masks: Uint8Array, count: number): Float64Array {
    const m = this.players, width = this.x.length, B = this.baseRows;
    if (masks.length < count * m) throw new RangeError(`explain: ${count} masks need ${count * m} entries, got ${masks.length}`);
    const out = new Float64Array(count);
    const perCall = Math.max(1, Math.floor(this.maxBatchRows / B));
    const batch = new Float64Array(Math.min(count, perCall) * B * width);
    for (let c0 = 0; c0 < count; c0 += perCall) {
      const n = Math.min(perCall, count - c0);
      for (let k = 0; k < n; k++) {
        const mo = (c0 + k) * m;
        for (let b = 0; b < B; b++) {
          const ro = (k * B + b) * width;
          batch.set(this.base.subarray(b * width, (b + 1) * width), ro);
          for (let p = 0; p < m; p++) {
            if (masks[mo + p]) {
              const g = this.groups[p]!;
              for (let col = g.start; col < g.end; col++) batch[ro + col] = this.x[col]!;
            }
          }
        }
      }
      const rows = n * B;
      const y = this.model(rows === batch.length / width ? batch : batch.subarray(0, rows * width), rows);
      if (y.length < rows) throw new RangeError(`explain: model returned ${y.length} outputs for ${rows} rows`);
      for (let k = 0; k < n; k++) {
        let s = 0;
        for (let b = 0; b < B; b++) s += y[k * B + b]!;
        const v = s / B;
        if (!Number.isFinite(v)) throw new RangeError(`explain: model returned a non-finite output (${v}) for a coalition`);
        out[c0 + k] = v;
      }
    }
    this.evaluations += count;
    this.modelRows += count * B;
    return out;
  }
}

/**
 * A game given directly by a value function on coalitions (for tests and non-model games).
 * @example const g = new FunctionGame(3, (mask) => mask[0]! * mask[1]!); // pure interaction
 */
export class FunctionGame implements CooperativeGame {
  evaluations = 0;
  constructor(
    readonly players: number,
    private readonly value: (mask: Uint8Array) => number,
  ) {
    if (!Number.isInteger(players) || players < 1) throw new RangeError(`explain: a game needs at least 1 player, got ${players}`);
  }

  values(masks: Uint8Array, count: number): Float64Array {
    const out = new Float64Array(count);
    for (let k = 0; k < count; k++) out[k] = this.value(masks.subarray(k * this.players, (k + 1) * this.players));
    this.evaluations += count;
    return out;
  }
}

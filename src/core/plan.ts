/**
 * Planned memory layout for repeated steps.
 *
 * A training step allocates the same blocks in the same order every time (same ops, same shapes,
 * same compression). An online allocator cannot know which blocks will die soon, so the many
 * differently sized blocks of a compressed step fragment the arena (ResNet-20 at batch 128, int2:
 * high-water 18% above the live peak; at batch 64, 27%). A `StepPlan` records one step's block
 * sizes and the order of their allocations and frees, places them offline (largest first, each at
 * the lowest offset free for its whole lifetime), and replays that layout in the next steps
 * inside one region of the arena: the high-water of a planned step is its live peak.
 *
 * Replay is guarded: every allocation and free must match the recorded sequence (same order, each
 * block at most its planned size). At the first mismatch in the sequence (a smaller last batch)
 * the region is given back at once, except for planned blocks still in use, and the rest of the
 * step is placed online; that step's trace becomes the next plan. A block larger than planned
 * (data-dependent sizes: COMET's entropy-coded streams vary by a fraction of a percent from step
 * to step) is placed online and the rest of the step still replays; the next plan keeps each
 * block at the larger of its planned and traced sizes, with headroom for a size that changed, so
 * that such steps converge to a replayed layout instead of being placed online every step. Blocks that outlived the
 * recorded step (results the caller kept) are placed online. Parameters and optimizer state
 * ('fixed') are never planned: they outlive every step.
 */
import { arena, Arena, ArenaLimitError, type AllocationInterceptor, type Lifetime } from './arena.js';

/** The recorded sequence of one step: allocation k is `k + 1`, a free of allocation k is `-(k + 1)`. */
interface Trace {
  sizes: number[];
  events: number[];
}

interface Layout extends Trace {
  /** Offset of each allocation in the region; -1 for blocks that outlived the step (placed online). */
  offsets: number[];
  regionBytes: number;
}

/** Steps in a row whose replay diverged before planning is given up (sizes that change every step). */
const MAX_DIVERGED_STEPS = 4;

/** Headroom of a block whose size changed between steps: 1/32 of it (rounded up to 64 bytes). */
const grown = (size: number) => Arena.blockSize(size + size / 32);

/**
 * The trace to plan the next step on after `trace` diverged from `layout`: the trace itself, or,
 * where the two ran the same allocations and frees in the same order, each block at the larger of
 * its two sizes (a size that changed with headroom, see `grown`).
 */
function mergeSizes(layout: Trace | null, trace: Trace): Trace {
  if (!layout || layout.events.length !== trace.events.length || layout.events.some((e, t) => e !== trace.events[t])) return trace;
  return { events: trace.events, sizes: trace.sizes.map((size, k) => (size <= layout.sizes[k]! ? layout.sizes[k]! : grown(size))) };
}

/**
 * Places every block of a trace: largest first, at the lowest offset that no block alive at the
 * same time occupies (a greedy for the offline dynamic storage allocation problem; on ResNet-20
 * steps it reaches the live peak exactly).
 */
export function planLayout(trace: Trace): Layout {
  const n = trace.sizes.length;
  const born = new Array<number>(n).fill(-1), died = new Array<number>(n).fill(-1);
  trace.events.forEach((e, t) => {
    if (e > 0) born[e - 1] = t;
    else died[-e - 1] = t;
  });
  const offsets = new Array<number>(n).fill(-1);
  const order = [...Array(n).keys()].filter((k) => died[k]! >= 0).sort((a, b) => trace.sizes[b]! - trace.sizes[a]! || born[a]! - born[b]!);
  const placed: number[] = [];
  let regionBytes = 0;
  for (const k of order) {
    const size = trace.sizes[k]!;
    const overlapping = placed
      .filter((q) => born[q]! < died[k]! && born[k]! < died[q]!)
      .sort((a, b) => offsets[a]! - offsets[b]!);
    let at = 0;
    for (const q of overlapping) {
      if (at + size <= offsets[q]!) break;
      at = Math.max(at, offsets[q]! + trace.sizes[q]!);
    }
    offsets[k] = at;
    placed.push(k);
    regionBytes = Math.max(regionBytes, at + size);
  }
  return { ...trace, offsets, regionBytes };
}

/** One step under a plan: traces it, and serves allocations from the plan's region while the step follows it. */
class StepRun implements AllocationInterceptor {
  readonly trace: Trace = { sizes: [], events: [] };
  /** Live blocks allocated in this step: offset -> allocation index. */
  private readonly live = new Map<number, number>();
  /** Allocation indices of live blocks inside the region. */
  private readonly planned = new Set<number>();
  private region = -1;
  diverged = false;
  /** Whether a block outgrew its planned size (placed online, the rest of the step still replays). */
  outgrown = false;

  constructor(private readonly a: Arena, private readonly layout: Layout | null) {
    a.resetSizeClasses();
    if (!layout || layout.regionBytes === 0) {
      this.diverged = layout !== null;
      return;
    }
    try {
      this.region = a.allocBlock(layout.regionBytes, 'short');
    } catch (e) {
      if (!(e instanceof ArenaLimitError)) throw e;
      this.diverged = true; // online placement may still fit where one contiguous region does not
    }
  }

  private follows(event: number): boolean {
    if (this.region < 0 || this.diverged) return false;
    const t = this.trace.events.length - 1;
    if (this.layout!.events[t] === event) return true;
    this.diverge();
    return false;
  }

  alloc(size: number, lifetime: Lifetime): number {
    const k = this.trace.sizes.length;
    this.trace.sizes.push(size);
    this.trace.events.push(k + 1);
    let ptr: number;
    const follows = this.follows(k + 1);
    if (follows && size <= this.layout!.sizes[k]! && this.layout!.offsets[k]! >= 0) {
      ptr = this.region + this.layout!.offsets[k]!;
      this.planned.add(k);
    } else {
      if (follows && size > this.layout!.sizes[k]!) this.outgrown = true;
      ptr = this.a.allocBlock(size, lifetime);
    }
    this.live.set(ptr, k);
    return ptr;
  }

  free(ptr: number, size: number): void {
    const k = this.live.get(ptr);
    if (k === undefined) {
      this.a.freeBlock(ptr, size); // allocated before this step
      return;
    }
    this.live.delete(ptr);
    this.trace.events.push(-(k + 1));
    this.follows(-(k + 1));
    if (!this.planned.delete(k)) this.a.freeBlock(ptr, size);
  }

  private diverge(): void {
    this.diverged = true;
    this.releaseRegion();
  }

  /**
   * Returns the region to the arena, except the planned blocks still in use: those stay where
   * they are as ordinary blocks (their later free goes to the free list).
   */
  private releaseRegion(): void {
    if (this.region < 0) return;
    const kept = [...this.planned].map((k) => [this.region + this.layout!.offsets[k]!, this.trace.sizes[k]!] as const).sort((x, y) => x[0] - y[0]);
    let at = this.region;
    for (const [start, size] of kept) {
      if (start > at) this.a.freeBlock(at, start - at);
      at = start + size;
    }
    const end = this.region + this.layout!.regionBytes;
    if (end > at) this.a.freeBlock(at, end - at);
    this.planned.clear();
    this.region = -1;
  }

  finish(): void {
    if (this.region >= 0 && this.trace.events.length !== this.layout!.events.length) this.diverged = true;
    this.releaseRegion();
  }
}

/**
 * Plans the arena layout of a repeated step (a training step): the first call records the step,
 * later calls replay the planned layout (see the module comment). Nested `run` calls belong to
 * the outermost one.
 *
 * @example
 * ```ts
 * import { StepPlan, scope, backward } from 'slimgrad';
 * const plan = new StepPlan();
 * for (const batch of batches) {
 *   plan.run(() => scope(() => {
 *     backward(lossOf(batch));
 *     optimizer.step();
 *     optimizer.zeroGrad();
 *   }));
 * }
 * ```
 */
export class StepPlan {
  private layout: Layout | null = null;

  /** `target`: the arena whose layout is planned (the process-wide one by default). */
  constructor(private readonly target: Arena = arena()) {}

  private divergedInARow = 0;
  /** Steps that ran entirely inside the planned layout. */
  replayedSteps = 0;

  /** Bytes of the planned region (0 before the first step is recorded, or after planning was given up). */
  get regionBytes(): number {
    return this.layout?.regionBytes ?? 0;
  }

  run<T>(step: () => T): T {
    const a = this.target;
    if (a.interceptor || this.divergedInARow >= MAX_DIVERGED_STEPS) return step();
    const run = new StepRun(a, this.layout);
    a.interceptor = run;
    try {
      return step();
    } finally {
      a.interceptor = null;
      run.finish();
      if (this.layout && !run.diverged) {
        if (run.outgrown) this.layout = planLayout(mergeSizes(this.layout, run.trace));
        else this.replayedSteps++;
        this.divergedInARow = 0;
      } else {
        if (this.layout) this.divergedInARow++;
        this.layout = this.divergedInARow >= MAX_DIVERGED_STEPS ? null : planLayout(mergeSizes(this.layout, run.trace));
      }
    }
  }
}

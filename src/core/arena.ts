/**
 * The arena: every tensor's bytes live in one WebAssembly.Memory so that wasm kernels read and
 * write them in place (no copies across the JS/wasm boundary) and worker threads can share them.
 *
 * Allocation is done here, in TypeScript, never inside wasm (the AssemblyScript runtime is not
 * thread-safe). Blocks are 64-byte aligned (cache lines, SIMD loads, Float64Array views).
 *
 * Free space is one address-ordered list of blocks, coalesced with both neighbours on every free;
 * a free block that reaches the top of the used space is given back to the top. A request takes
 * a free block that holds it (see `alloc` for which) and splits off the rest, so space freed by
 * one size serves any other: under activation compression
 * a step allocates many differently sized packed blocks, and exact-size recycling fragmented
 * them (the high-water ran ~90% above the live peak). Bytes are handed out as they are (never
 * zero-filled here): whoever needs zeros fills them (see Storage).
 *
 * `limitBytes` caps the used address space (`--memory-limit`): a request that would take the top
 * past it throws an ArenaLimitError instead of growing memory.
 */

const PAGE = 65536;
const ALIGN = 64;
const MAX_PAGES = 65536; // 4 GiB: the wasm32 address space
/** Bytes a wasm32 arena can ever address. */
export const ARENA_MAX_BYTES = MAX_PAGES * PAGE;

const MiB = 2 ** 20;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/** An allocation the arena cannot serve: over `limitBytes`, or past the 4 GiB wasm32 address space. */
export class ArenaLimitError extends RangeError {
  constructor(
    /** The block size that was requested (after alignment). */
    readonly requestBytes: number,
    /** Bytes in use (live blocks) when it was requested. */
    readonly inUseBytes: number,
    /** The cap that was hit: `limitBytes`, or 4 GiB. */
    readonly limitBytes: number,
    /** True when the cap is the wasm32 address space rather than a memory limit. */
    readonly addressSpace: boolean,
    what = `${mib(requestBytes)}`,
  ) {
    super(addressSpace
      ? `out of memory: ${what} does not fit in the 4 GiB WebAssembly (wasm32) address space (${mib(inUseBytes)} in use)`
      : `out of memory: ${what} would take the arena past the memory limit of ${mib(limitBytes)} (${mib(inUseBytes)} in use)`);
    this.name = 'ArenaLimitError';
  }

  /** The same error with a description of what was being allocated (a tensor, a workspace). */
  describing(what: string): ArenaLimitError {
    return new ArenaLimitError(this.requestBytes, this.inUseBytes, this.limitBytes, this.addressSpace, what);
  }
}

/** Placement hint of a block (see Arena.alloc). */
export type Lifetime = 'short' | 'long' | 'fixed';

/** What a step plan implements to take over placement during a step (see core/plan.ts). */
export interface AllocationInterceptor {
  /** Returns the offset of a block of `size` (aligned) bytes, planned or from `allocBlock`. */
  alloc(size: number, lifetime: Lifetime): number;
  /** Takes back a block, planned or not (then `freeBlock`). */
  free(ptr: number, size: number): void;
}

export class Arena {
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  private top = ALIGN; // offset 0 stays unused so that 0 can mean "null pointer"
  private highWater = ALIGN;
  /** Start offsets of the free blocks, ascending; `freeSize[i]` is the size of block `freeStart[i]`. */
  private freeStart: number[] = [];
  private freeSize: number[] = [];
  /** Bytes handed out and not yet freed (block sizes, i.e. including alignment padding). */
  reservedBytes = 0;
  /** Cap on the used address space in bytes (`Infinity`: up to the 4 GiB wasm32 limit). */
  limitBytes = Infinity;
  /** The largest 'short' block since `resetSizeClasses` (what counts as a large activation). */
  private largestShort = 0;
  /** While a step plan runs (core/plan.ts): places the step's non-fixed blocks and sees their frees. */
  interceptor: AllocationInterceptor | null = null;

  constructor(initialPages = 256) {
    let memory: WebAssembly.Memory;
    let shared = true;
    try {
      // A page that is not cross-origin isolated may create shared memory (Chromium does) but
      // cannot send it to a Web Worker: unshared there, as where it cannot be created.
      if ((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === false) throw new Error('not cross-origin isolated');
      memory = new WebAssembly.Memory({ initial: initialPages, maximum: MAX_PAGES, shared: true });
    } catch {
      // Browsers without cross-origin isolation have no SharedArrayBuffer: single-threaded then.
      memory = new WebAssembly.Memory({ initial: initialPages, maximum: MAX_PAGES });
      shared = false;
    }
    this.memory = memory;
    this.shared = shared;
  }

  /**
   * Sets `bytes` bytes at `ptr` to zero. On shared memory this runs wasm's `memory.fill` (V8 fills
   * a SharedArrayBuffer-backed typed array element by element with relaxed atomics: a 1.2 MB
   * `Uint8Array.fill(0)` took ~500 us there against ~20 us for `memory.fill`); unshared memory
   * fills from JavaScript, which is as fast there.
   */
  zero(ptr: number, bytes: number): void {
    if (bytes === 0) return;
    if (this.shared) {
      this.zeroFill ??= zeroFillOf(this.memory);
      if (this.zeroFill) return this.zeroFill(ptr, bytes);
    }
    new Uint8Array(this.memory.buffer, ptr, bytes).fill(0);
  }
  private zeroFill: ((ptr: number, bytes: number) => void) | null | undefined;

  /** Current backing buffer. Re-read after any allocation: growing replaces it. */
  get buffer(): ArrayBufferLike {
    return this.memory.buffer;
  }

  static blockSize(bytes: number): number {
    return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  }

  /**
   * Returns the byte offset of a block of at least `bytes` bytes, 64-byte aligned. `lifetime` is
   * a placement hint: 'short' (activations, workspace: freed within a step), 'long' (saved for
   * backward, gradients: live across a forward and backward) or 'fixed' (parameters, optimizer
   * state: live across steps). During a `StepPlan` step the plan places non-fixed blocks.
   */
  alloc(bytes: number, lifetime: Lifetime = 'long'): number {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`arena: cannot allocate ${bytes} bytes`);
    const size = Arena.blockSize(bytes);
    return this.interceptor && lifetime !== 'fixed' ? this.interceptor.alloc(size, lifetime) : this.allocBlock(size, lifetime);
  }

  /**
   * `alloc` without the step plan: the online policy. 'fixed' and 'short' blocks take the first
   * (lowest) hole that holds them, 'long' blocks the last (highest) one. 'fixed' blocks and large
   * 'short' ones (at least half the largest short block since `resetSizeClasses`) take the low end
   * of their hole; small short blocks and 'long' ones take the high end. Large activations then
   * pack at the bottom, next to each other, and the small and long-lived blocks that fill holes do
   * not split the low end where the next large block goes. A long block (a packed saved
   * activation, a gradient) in the lowest hole would split the slot a large activation just left
   * (ResNet-20 b128 int4: the next 8 MB activation then found 6.3 MB there and went to the top):
   * it goes to the highest hole instead. Parameters gather at the very bottom, so momentum buffers
   * created by the first step do not pin a hole mid-arena. (Replaying recorded first steps of
   * ResNet-20 b64/b128 off..comet, the transformer, LeNet-5 and the MLP through this allocator:
   * high-water over live peak 1.00-1.32, mean 1.15, against 1.00-1.52, mean 1.18, with first fit
   * for long blocks too; see BENCHMARKS.md. Later steps replay a plan: see core/plan.ts.)
   */
  allocBlock(size: number, lifetime: Lifetime): number {
    if (lifetime === 'short' && size > this.largestShort) this.largestShort = size;
    const fromHigh = lifetime === 'long' || (lifetime === 'short' && 2 * size < this.largestShort);
    const at = lifetime === 'long' ? this.lastFit(size) : this.firstFit(size);
    this.reservedBytes += size;
    if (at >= 0) {
      const start = this.freeStart[at]!, rest = this.freeSize[at]! - size;
      if (rest === 0) {
        this.freeStart.splice(at, 1);
        this.freeSize.splice(at, 1);
        return start;
      }
      this.freeSize[at] = rest;
      if (fromHigh) return start + rest;
      this.freeStart[at] = start + size;
      return start;
    }
    const ptr = this.top;
    const end = ptr + size;
    if (end > this.limitBytes || end > ARENA_MAX_BYTES) {
      this.reservedBytes -= size;
      throw new ArenaLimitError(size, this.reservedBytes, Math.min(this.limitBytes, ARENA_MAX_BYTES), end > ARENA_MAX_BYTES && this.limitBytes >= ARENA_MAX_BYTES);
    }
    if (end > this.memory.buffer.byteLength) this.grow(end);
    this.top = end;
    if (end > this.highWater) this.highWater = end;
    return ptr;
  }

  private firstFit(size: number): number {
    for (let i = 0; i < this.freeSize.length; i++) if (this.freeSize[i]! >= size) return i;
    return -1;
  }

  private lastFit(size: number): number {
    for (let i = this.freeSize.length - 1; i >= 0; i--) if (this.freeSize[i]! >= size) return i;
    return -1;
  }

  free(ptr: number, bytes: number): void {
    const size = Arena.blockSize(bytes);
    if (this.interceptor) this.interceptor.free(ptr, size);
    else this.freeBlock(ptr, size);
  }

  /** `free` without the step plan: returns `[ptr, ptr + size)` to the free list (coalescing). */
  freeBlock(ptr: number, blockBytes: number): void {
    let start = ptr, size = blockBytes;
    this.reservedBytes -= size;
    // Insertion point: the first free block above ptr.
    let lo = 0, hi = this.freeStart.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.freeStart[mid]! < ptr) lo = mid + 1;
      else hi = mid;
    }
    let at = lo, remove = 0;
    if (at > 0 && this.freeStart[at - 1]! + this.freeSize[at - 1]! === start) {
      at--; // merge with the block below
      start = this.freeStart[at]!;
      size += this.freeSize[at]!;
      remove++;
    }
    if (lo < this.freeStart.length && ptr + blockBytes === this.freeStart[lo]!) {
      size += this.freeSize[lo]!; // merge with the block above
      remove++;
    }
    if (start + size === this.top) {
      this.top = start; // the top of the used space moves down
      this.freeStart.splice(at, remove);
      this.freeSize.splice(at, remove);
    } else {
      this.freeStart.splice(at, remove, start);
      this.freeSize.splice(at, remove, size);
    }
  }

  /** The highest end of the used address space since creation or `resetHighWater` (the arena's high-water mark). */
  get highWaterBytes(): number {
    return this.highWater;
  }

  /** End of the address space in use now (live blocks and the free holes between them). */
  get usedBytes(): number {
    return this.top;
  }

  /** Free blocks below the top: `[offset, size]` pairs in address order (for tests and reports). */
  freeBlocks(): [number, number][] {
    return this.freeStart.map((s, i) => [s, this.freeSize[i]!]);
  }

  /** Forgets the block sizes seen so far (a step plan calls it per step: each step sizes its own activations). */
  resetSizeClasses(): void {
    this.largestShort = 0;
  }

  /** Starts a new high-water window at the current top. */
  resetHighWater(): void {
    this.highWater = this.top;
  }

  private grow(end: number): void {
    const have = this.memory.buffer.byteLength;
    // Double (amortized O(1) growth) but never past the wasm32 limit or the memory limit
    // (pages that are reserved but never touched cost no process memory, but a cap is a cap).
    const cap = Math.min(ARENA_MAX_BYTES, Number.isFinite(this.limitBytes) ? Math.ceil(this.limitBytes / PAGE) * PAGE : ARENA_MAX_BYTES);
    const wantBytes = Math.max(end, Math.min(have * 2, cap));
    this.memory.grow(Math.ceil((wantBytes - have) / PAGE));
  }
}

/**
 * `zero(ptr, bytes)`: `memory.fill(ptr, 0, bytes)` on a shared memory of up to MAX_PAGES pages, as
 * a 63-byte wasm module (type, import env.memory, one function, its export, its body); null where
 * the runtime lacks bulk memory operations (then typed-array fills do).
 */
function zeroFillOf(memory: WebAssembly.Memory): ((ptr: number, bytes: number) => void) | null {
  const bytes = new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x06, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x00, // type 0: (i32, i32) -> ()
    0x02, 0x12, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, // import "env" "memory"
    0x02, 0x03, 0x01, 0x80, 0x80, 0x04, // memory, shared with a maximum: 1 .. 65536 pages
    0x03, 0x02, 0x01, 0x00, // function 0 has type 0
    0x07, 0x08, 0x01, 0x04, 0x7a, 0x65, 0x72, 0x6f, 0x00, 0x00, // export "zero" = function 0
    0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x41, 0x00, 0x20, 0x01, 0xfc, 0x0b, 0x00, 0x0b, // local.get 0, i32.const 0, local.get 1, memory.fill
  ]);
  try {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    return instance.exports.zero as (ptr: number, bytes: number) => void;
  } catch {
    return null;
  }
}

let defaultArena: Arena | undefined;

/** The process-wide arena every tensor is allocated from. */
export function arena(): Arena {
  return (defaultArena ??= new Arena());
}

/**
 * Caps the process-wide arena at `bytes` (`Infinity` removes the cap): an allocation that would
 * take its used address space past the cap throws an ArenaLimitError naming the tensor.
 *
 * @example
 * ```ts
 * import { setMemoryLimit, parseByteSize } from 'slimgrad';
 * setMemoryLimit(parseByteSize('256MiB'));
 * ```
 */
export function setMemoryLimit(bytes: number): void {
  if (!(bytes > 0)) throw new RangeError(`setMemoryLimit: expected a positive number of bytes, got ${bytes}`);
  const a = arena();
  if (a.usedBytes > bytes) throw new RangeError(`setMemoryLimit: ${mib(a.usedBytes)} of the arena is already in use, more than the limit of ${mib(bytes)}`);
  a.limitBytes = bytes;
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, kib: 2 ** 10, m: 1e6, mb: 1e6, mib: 2 ** 20, g: 1e9, gb: 1e9, gib: 2 ** 30 };

/**
 * Parses a byte size: a plain number of bytes or a number with a unit (`256MiB`, `1.5GiB`,
 * `500MB`, `64k`); binary units (KiB/MiB/GiB) are powers of 1024, decimal ones powers of 1000.
 *
 * @example
 * ```ts
 * parseByteSize('256MiB'); // 268435456
 * ```
 */
export function parseByteSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined || !(Number(m[1]) > 0)) {
    throw new RangeError(`${what}: expected a positive size in bytes such as 268435456, 256MiB or 1GiB, got '${text}'`);
  }
  return Math.floor(Number(m[1]) * unit);
}

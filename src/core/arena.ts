/**
 * The arena: every tensor's bytes live in one WebAssembly.Memory so that wasm kernels read and
 * write them in place (no copies across the JS/wasm boundary) and worker threads can share them.
 *
 * Allocation is done here, in TypeScript, never inside wasm (the AssemblyScript runtime is not
 * thread-safe). Blocks are 64-byte aligned (cache lines, SIMD loads, Float64Array views) and
 * recycled through exact-size free lists: a training loop allocates the same shapes every step,
 * so after the first step nearly every request is served from a free list.
 */

const PAGE = 65536;
const ALIGN = 64;
const MAX_PAGES = 65536; // 4 GiB: the wasm32 address space

export class Arena {
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  private top = ALIGN; // offset 0 stays unused so that 0 can mean "null pointer"
  private readonly freeLists = new Map<number, number[]>();
  /** Bytes handed out and not yet freed (block sizes, i.e. including alignment padding). */
  reservedBytes = 0;

  constructor(initialPages = 256) {
    let memory: WebAssembly.Memory;
    let shared = true;
    try {
      memory = new WebAssembly.Memory({ initial: initialPages, maximum: MAX_PAGES, shared: true });
    } catch {
      // Browsers without cross-origin isolation have no SharedArrayBuffer: single-threaded then.
      memory = new WebAssembly.Memory({ initial: initialPages, maximum: MAX_PAGES });
      shared = false;
    }
    this.memory = memory;
    this.shared = shared;
  }

  /** Current backing buffer. Re-read after any allocation: growing replaces it. */
  get buffer(): ArrayBufferLike {
    return this.memory.buffer;
  }

  static blockSize(bytes: number): number {
    return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  }

  /** Returns the byte offset of a block of at least `bytes` bytes, 64-byte aligned. */
  alloc(bytes: number): number {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`arena: cannot allocate ${bytes} bytes`);
    const size = Arena.blockSize(bytes);
    const list = this.freeLists.get(size);
    if (list && list.length > 0) {
      this.reservedBytes += size;
      return list.pop()!;
    }
    const ptr = this.top;
    const end = ptr + size;
    if (end > this.memory.buffer.byteLength) this.grow(end);
    this.top = end;
    this.reservedBytes += size;
    return ptr;
  }

  free(ptr: number, bytes: number): void {
    const size = Arena.blockSize(bytes);
    let list = this.freeLists.get(size);
    if (!list) this.freeLists.set(size, (list = []));
    list.push(ptr);
    this.reservedBytes -= size;
  }

  /** Bytes of address space in use, free-listed blocks included (the arena's high-water mark). */
  get highWaterBytes(): number {
    return this.top;
  }

  private grow(end: number): void {
    const have = this.memory.buffer.byteLength;
    // Double (amortized O(1) growth) but never past the wasm32 limit.
    const wantBytes = Math.max(end, Math.min(have * 2, MAX_PAGES * PAGE));
    const pages = Math.ceil((wantBytes - have) / PAGE);
    if (have / PAGE + pages > MAX_PAGES) {
      throw new RangeError(
        `arena: out of memory: need ${end} bytes but the WebAssembly address space ends at 4 GiB`,
      );
    }
    this.memory.grow(pages);
  }
}

let defaultArena: Arena | undefined;

/** The process-wide arena every tensor is allocated from. */
export function arena(): Arena {
  return (defaultArena ??= new Arena());
}

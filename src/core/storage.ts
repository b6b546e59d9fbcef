import { arena, type Lifetime } from './arena.js';
import { DTYPES, type AnyTypedArray, type DType } from './dtype.js';
import { ledger, type Category } from './ledger.js';

let nextStorageId = 1;

/** The arena's placement hint per category (see Arena.alloc). */
const LIFETIME: Record<Category, Lifetime> = {
  activation: 'short', workspace: 'short', saved: 'long', gradient: 'long', parameter: 'fixed', optimizer: 'fixed',
};

/**
 * A reference-counted block of arena memory holding `length` elements of one dtype, zero-filled
 * unless created with `zeroed = false` (for outputs a kernel overwrites entirely: freed blocks are
 * reused as they are, so skipping the fill saves a pass over memory).
 * Tensors are views over a storage; saved-for-backward slots hold references too. The block is
 * returned to the arena the moment the last reference goes (deterministic, never left to GC).
 * `version` counts in-place writes so that autograd can detect a saved value that was modified.
 */
export class Storage {
  readonly id = nextStorageId++;
  readonly ptr: number;
  readonly byteLength: number;
  private refs = 1;
  version = 0;
  /** How many saved-for-backward slots reference this storage (see autograd/saved.ts). */
  savedRefs = 0;
  /** The category the bytes are booked under right now. */
  booked: Category;

  constructor(
    readonly dtype: DType,
    readonly length: number,
    readonly category: Category,
    zeroed = true,
  ) {
    this.byteLength = length * DTYPES[dtype].bytes;
    this.ptr = arena().alloc(this.byteLength, LIFETIME[category]);
    if (zeroed) arena().zero(this.ptr, this.byteLength);
    this.booked = category;
    ledger.add(category, this.byteLength);
    ledger.storages++;
  }

  get alive(): boolean {
    return this.refs > 0;
  }

  /** Whether exactly one view references these bytes and no saved-for-backward slot does. */
  get exclusive(): boolean {
    return this.refs === 1 && this.savedRefs === 0;
  }

  /** A typed-array view over the whole storage. Valid until the next allocation may grow memory. */
  view(): AnyTypedArray {
    if (this.refs <= 0) throw new Error(`storage #${this.id} was already freed`);
    return new DTYPES[this.dtype].ctor(arena().buffer, this.ptr, this.length);
  }

  retain(): void {
    if (this.refs <= 0) throw new Error(`storage #${this.id} was already freed`);
    this.refs++;
  }

  release(): void {
    if (this.refs <= 0) throw new Error(`storage #${this.id} was released more often than retained`);
    if (--this.refs === 0) {
      ledger.remove(this.booked, this.byteLength);
      ledger.storages--;
      arena().free(this.ptr, this.byteLength);
    }
  }

  /** Moves this storage's bytes to another ledger category (e.g. activation -> saved). */
  rebook(to: Category): void {
    if (to === this.booked) return;
    ledger.move(this.booked, to, this.byteLength);
    this.booked = to;
  }
}

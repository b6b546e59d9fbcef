/**
 * Exact memory accounting. Every storage is tagged with a category when it is created; the
 * ledger adds and removes its logical bytes (elements x element size, no allocator padding) as
 * storages are created and freed, and keeps the peak of each category since the last reset.
 * Saved-for-backward bytes are booked separately by the autograd saved-value slots (see
 * autograd/saved.ts), per op and per slot, because a saved value may be a reference to an
 * existing storage or a compressed copy.
 */
export type Category = 'parameter' | 'gradient' | 'optimizer' | 'activation' | 'workspace' | 'saved';

export const CATEGORIES: readonly Category[] = ['parameter', 'gradient', 'optimizer', 'activation', 'workspace', 'saved'];

export interface MemoryReport {
  /** Live bytes per category now. */
  current: Record<Category, number>;
  /** Peak bytes per category since the last reset. */
  peak: Record<Category, number>;
  /** Live bytes over all categories, saved values counted once (see `savedOverlapBytes`). */
  totalBytes: number;
  /** Peak of `totalBytes` since the last reset. */
  peakTotalBytes: number;
  /** Saved bytes per op name (live). */
  savedByOp: Record<string, number>;
  /** Live storages. */
  storages: number;
}

function zeros(): Record<Category, number> {
  return { parameter: 0, gradient: 0, optimizer: 0, activation: 0, workspace: 0, saved: 0 };
}

class Ledger {
  private current = zeros();
  private peak = zeros();
  private total = 0;
  private peakTotal = 0;
  private savedOps = new Map<string, number>();
  storages = 0;
  /**
   * Saved-for-backward slots that merely reference a live activation storage are booked under
   * 'saved' and the storage's own 'activation' bytes moved there (see autograd/saved.ts), so
   * `totalBytes` never counts the same byte twice.
   */
  add(cat: Category, bytes: number): void {
    const v = (this.current[cat] += bytes);
    if (v > this.peak[cat]) this.peak[cat] = v;
    this.total += bytes;
    if (this.total > this.peakTotal) this.peakTotal = this.total;
  }

  remove(cat: Category, bytes: number): void {
    this.current[cat] -= bytes;
    this.total -= bytes;
  }

  /** Moves bytes between categories without changing the total (a storage changing role). */
  move(from: Category, to: Category, bytes: number): void {
    this.current[from] -= bytes;
    const v = (this.current[to] += bytes);
    if (v > this.peak[to]) this.peak[to] = v;
  }

  addSavedOp(op: string, bytes: number): void {
    this.savedOps.set(op, (this.savedOps.get(op) ?? 0) + bytes);
  }

  removeSavedOp(op: string, bytes: number): void {
    const left = (this.savedOps.get(op) ?? 0) - bytes;
    if (left === 0) this.savedOps.delete(op);
    else this.savedOps.set(op, left);
  }

  report(): MemoryReport {
    return {
      current: { ...this.current },
      peak: { ...this.peak },
      totalBytes: this.total,
      peakTotalBytes: this.peakTotal,
      savedByOp: Object.fromEntries(this.savedOps),
      storages: this.storages,
    };
  }

  /** Starts a new peak window: every peak becomes the current value. */
  resetPeaks(): void {
    this.peak = { ...this.current };
    this.peakTotal = this.total;
  }
}

export const ledger = new Ledger();

/** Snapshot of the engine's memory accounting. */
export function memory(): MemoryReport {
  return ledger.report();
}

export function resetPeakMemory(): void {
  ledger.resetPeaks();
}

import type { ParallelWork } from '../kernels.js';

/** The reference's parallelFor: one thread, so every index runs in order in slot 0 (whatever the work). */
export function parallelFor(count: number, body: (i: number, slot: number) => void, _work?: ParallelWork): void {
  for (let i = 0; i < count; i++) body(i, 0);
}

export function parallelSlots(_count: number, _work?: ParallelWork): number {
  return 1;
}

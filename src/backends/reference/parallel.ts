/** The reference's parallelFor: one thread, so every index runs in order in slot 0. */
export function parallelFor(count: number, body: (i: number, slot: number) => void): void {
  for (let i = 0; i < count; i++) body(i, 0);
}

export function parallelSlots(_count: number): number {
  return 1;
}

/** Shape arithmetic shared by every op. */
export type Shape = readonly number[];

// Indexed loops, not for-of or spread, in the helpers every tensor runs through: V8 iterates a
// frozen array (every tensor's shape) through the generic protocol, one garbage object per element.
export function numel(shape: Shape): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i]!;
  return n;
}

/** A plain-array copy of a shape or strides (any array-like of numbers). */
export function copyShape(shape: Shape): number[] {
  const out = new Array<number>(shape.length);
  for (let i = 0; i < shape.length; i++) out[i] = shape[i]!;
  return out;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function shapeEq(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** An error about shapes: always names the op and the shapes at fault. */
export class ShapeError extends Error {
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
    this.name = 'ShapeError';
  }
}

/** NumPy broadcasting of two shapes; throws a ShapeError naming `op` and both shapes. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(op, `shapes ${fmt(a)} and ${fmt(b)} cannot be broadcast together (dimension ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Normalizes a possibly negative axis against rank `rank`. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new ShapeError(op, `axis ${axis} is out of range for a tensor of rank ${rank}`);
  return a;
}

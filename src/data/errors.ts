/**
 * A data file that cannot be read as what it claims to be. `file` names the file (or the
 * entry inside an archive, as `archive.npz:x.npy`) so that the message points at the culprit.
 */
export class DataFormatError extends Error {
  override readonly name = 'DataFormatError';
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/**
 * A shape for an error message, kept short whatever a hostile header declares: at most 6 dims are
 * listed, the rest summarised ("[1, 2, 3, 4, 5, 6, … (255 dims)]").
 */
export function formatShape(shape: readonly number[], open = '[', close = ']'): string {
  const listed = shape.slice(0, 6).join(', ');
  return shape.length > 6 ? `${open}${listed}, … (${shape.length} dims)${close}` : `${open}${listed}${close}`;
}

/** A byte count with thousands separators, for messages about sizes. */
export function formatBytes(n: number): string {
  return `${n.toLocaleString('en-US')} bytes`;
}

/**
 * The number of elements of a shape read from a file: exact up to 2^53, Infinity past it (so that
 * size checks refuse it), and 0 when any dimension is 0 (a plain product would give
 * Infinity * 0 = NaN once huge dimensions overflow, and NaN passes every comparison).
 */
export function elementCount(shape: readonly number[]): number {
  if (shape.includes(0)) return 0;
  const count = shape.reduce((a, d) => a * d, 1);
  return count <= Number.MAX_SAFE_INTEGER ? count : Infinity;
}

/** Text from a file for a message: control characters shown as '?', at most `max` characters. */
export function clip(text: string, max = 120): string {
  const printable = text.replace(/[\u0000-\u001f\u007f-\u009f\ufffd]/g, '?');
  return printable.length > max ? `${printable.slice(0, max)}…` : printable;
}

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

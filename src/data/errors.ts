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

/**
 * Character-level text datasets: the vocabulary is every distinct character of the file (sorted),
 * the first 90% of the characters are the training split and the last 10% the validation split.
 * An example is a window of `tokens + 1` characters at a stride of `tokens` (inputs are the first
 * `tokens`, targets the last `tokens`), so example ids are stable and windows do not overlap.
 */
import { readFileSync, statSync } from 'node:fs';

export interface CharText {
  /** The distinct characters, sorted; a character's id is its index. */
  readonly vocab: string[];
  readonly train: Int32Array;
  readonly validation: Int32Array;
}

/** Largest text file read (bytes); larger files are refused before reading. */
export const MAX_TEXT_BYTES = 256 * 1024 * 1024;

/**
 * Reads a UTF-8 text file as character ids.
 *
 * @example
 * const text = loadCharText('../shared/data/text/tinyshakespeare.txt');
 * console.log(text.vocab.length, text.train.length, text.validation.length);
 */
export function loadCharText(path: string): CharText {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new Error(`cannot read text file ${path}: ${(e as Error).message}`);
  }
  if (size > MAX_TEXT_BYTES) throw new Error(`text file ${path} has ${size} bytes, more than the ${MAX_TEXT_BYTES} this loader reads`);
  return charTextFrom(readFileSync(path, 'utf8'), path);
}

/** Splits a string into a vocabulary and train/validation ids (see `loadCharText`). */
export function charTextFrom(text: string, source = 'text'): CharText {
  const chars = [...text];
  if (chars.length < 20) throw new Error(`${source}: needs at least 20 characters, has ${chars.length}`);
  const vocab = [...new Set(chars)].sort();
  const index = new Map(vocab.map((c, i) => [c, i]));
  const ids = Int32Array.from(chars, (c) => index.get(c)!);
  const cut = Math.floor(ids.length * 0.9);
  return { vocab, train: ids.subarray(0, cut), validation: ids.subarray(cut) };
}

/** Number of whole examples (windows of tokens + 1 at stride tokens) in `ids`. */
export function charExampleCount(ids: Int32Array, tokens: number): number {
  return Math.max(0, Math.floor((ids.length - 1) / tokens));
}

/** Writes example `id`'s inputs and targets (each `tokens` ids) into `x` and `y` at `offset`. */
export function charExample(ids: Int32Array, tokens: number, id: number, x: Int32Array, y: Int32Array, offset = 0): void {
  const n = charExampleCount(ids, tokens);
  if (!Number.isInteger(id) || id < 0 || id >= n) throw new RangeError(`char text: example ${id} is outside [0, ${n})`);
  const start = id * tokens;
  x.set(ids.subarray(start, start + tokens), offset);
  y.set(ids.subarray(start + 1, start + tokens + 1), offset);
}

/**
 * Compact storage of low-entropy sign bits (SBNN's sparse binary weights): the positions of the
 * minority bit value, as the gaps between them (majority bits in a row), each Rice-coded with
 * shift r: ⌊gap / 2^r⌋ one-bits, a zero bit, then the r low bits of the gap; bits LSB-first in
 * Uint32 words. Only the bits that hold weights are coded (the pad bits of packed rows are 0).
 * An i.i.d. code with a fraction p of minority bits takes about H(p) + 0.03 bits per weight at
 * the best r (p = 0.1: ≈ 0.5 bit instead of 1); the deployed-model file uses it for a binary
 * stage's weights where it takes fewer words than the packed rows.
 *
 * @example
 * const packed = packSignRows(weights, rows, k);                  // 1 bit per weight
 * const coded = riceEncodeBits(packed, rows, k);                   // null unless smaller
 * if (coded) riceDecodeBits(coded.stream, rows, k, coded);         // equals packed
 */
import { popcount32, wordsFor } from './kernels.js';

/** How a bit array was coded (stored next to the stream). */
export interface RiceCoding {
  /** The bit value coded by position (the rarer one). */
  minority: 0 | 1;
  /** Number of minority bits. */
  count: number;
  /** Rice shift r (0..16). */
  shift: number;
}

/** Largest Rice shift written or read. */
const MAX_SHIFT = 16;

/** Bits of the Rice code of these gaps at shift r. */
const codedBits = (gaps: readonly number[], r: number): number => gaps.reduce((n, g) => n + (g >>> r) + 1 + r, 0);

/**
 * The Rice code of the weight bits of `rows` packed rows of `bitsPerRow` bits each (wordsFor(bits)
 * words per row), or null when it would not take fewer words than `words` itself or a pad bit is set.
 */
export function riceEncodeBits(words: Uint32Array, rows: number, bitsPerRow: number): (RiceCoding & { stream: Uint32Array }) | null {
  const rw = wordsFor(bitsPerRow);
  if (words.length !== rows * rw || rows * bitsPerRow === 0) return null;
  let ones = 0;
  for (let i = 0; i < words.length; i++) ones += popcount32(words[i]!);
  const tail = bitsPerRow % 32;
  if (tail) for (let r = 0; r < rows; r++) if (words[r * rw + rw - 1]! >>> tail) return null;
  const total = rows * bitsPerRow, minority: 0 | 1 = ones * 2 <= total ? 1 : 0;
  const gaps: number[] = [];
  let run = 0;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < bitsPerRow; i++) {
      if (((words[r * rw + (i >>> 5)]! >>> (i & 31)) & 1) === minority) {
        gaps.push(run);
        run = 0;
      } else run++;
    }
  }
  let shift = 0;
  for (let r = 1; r <= MAX_SHIFT; r++) if (codedBits(gaps, r) < codedBits(gaps, shift)) shift = r;
  const n = wordsFor(codedBits(gaps, shift));
  if (n >= words.length) return null;
  const stream = new Uint32Array(n);
  let at = 0;
  const put = (bit: number) => {
    if (bit) stream[at >>> 5] |= 1 << (at & 31);
    at++;
  };
  for (const g of gaps) {
    for (let q = g >>> shift; q > 0; q--) put(1);
    put(0);
    for (let b = 0; b < shift; b++) put((g >>> b) & 1);
  }
  return { stream, minority, count: gaps.length, shift };
}

/**
 * The packed rows back from their Rice code. Throws an Error saying what is wrong when the code
 * does not describe exactly `count` minority bits inside rows·bitsPerRow bits (a file may lie).
 */
export function riceDecodeBits(stream: Uint32Array, rows: number, bitsPerRow: number, c: RiceCoding): Uint32Array {
  const total = rows * bitsPerRow, rw = wordsFor(bitsPerRow), end = stream.length * 32;
  if (c.minority !== 0 && c.minority !== 1) throw new Error(`sparse sign code: minority must be 0 or 1, got ${JSON.stringify(c.minority)}`);
  if (!Number.isInteger(c.shift) || c.shift < 0 || c.shift > MAX_SHIFT) throw new Error(`sparse sign code: shift must be an integer in 0..${MAX_SHIFT}, got ${JSON.stringify(c.shift)}`);
  if (!Number.isSafeInteger(c.count) || c.count < 0 || c.count > total) throw new Error(`sparse sign code: count must be an integer in 0..${total}, got ${JSON.stringify(c.count)}`);
  const words = new Uint32Array(rows * rw);
  // Start with every weight bit at the majority value, then flip the coded positions.
  if (c.minority === 0) {
    for (let r = 0; r < rows; r++) for (let i = 0; i < bitsPerRow; i++) words[r * rw + (i >>> 5)] |= 1 << (i & 31);
  }
  let at = 0, pos = -1;
  const get = (): number => {
    if (at >= end) throw new Error(`sparse sign code: the stream of ${stream.length} words ends before its ${c.count} positions`);
    const bit = (stream[at >>> 5]! >>> (at & 31)) & 1;
    at++;
    return bit;
  };
  for (let j = 0; j < c.count; j++) {
    let q = 0;
    while (get()) if (++q > total) throw new Error(`sparse sign code: a gap runs past the ${total} weight bits`);
    let g = q * 2 ** c.shift;
    for (let b = 0; b < c.shift; b++) g += get() << b;
    pos += g + 1;
    if (pos >= total) throw new Error(`sparse sign code: position ${pos} is past the ${total} weight bits`);
    const r = Math.floor(pos / bitsPerRow), i = pos % bitsPerRow;
    words[r * rw + (i >>> 5)] ^= 1 << (i & 31);
  }
  return words;
}

/**
 * Bounded decompression: every file is hostile, so no stream is inflated past the size its format
 * declares (a zip entry's size, an IDX header's dimensions times the element size, else the gzip
 * trailer) plus `INFLATE_SLACK`, nor past a global cap (`maxBytes`, default 1 GiB). Exceeding
 * either is a DataFormatError naming the file, the declared size and the size it would reach, raised
 * before the memory is spent. Pure: the raw decompressors are supplied by the caller (node:zlib in
 * Node, see `nodeDecompressors` in files.ts), so this module runs anywhere.
 */
import { DataFormatError, formatBytes } from './errors.js';

/** Default global cap on the bytes one file or archive entry may decompress to: 1 GiB. */
export const DEFAULT_MAX_DATA_BYTES = 2 ** 30;

/** Bytes a stream may run past its declared size before decompression stops. */
export const INFLATE_SLACK = 4096;

/**
 * Decompresses `compressed` into at most `maxOutputLength` bytes; returns null when the output
 * would be longer (having stopped there) and throws on corrupt data. With `partial`, a truncated
 * stream yields what its prefix holds instead of an error (used to peek at a header).
 */
export type Decompress = (compressed: Uint8Array, maxOutputLength: number, partial?: boolean) => Uint8Array | null;

/** Raw deflate (RFC 1951, as in zip) and gzip (RFC 1952) decompressors. */
export interface Decompressors {
  inflateRaw: Decompress;
  gunzip: Decompress;
}

/** Limits on what a loader may allocate for one file. */
export interface DataLimits {
  /** Most bytes a file (or one archive entry, or all entries together) may decompress to; default 1 GiB. */
  maxBytes?: number;
}

/** A size the data's own header declares, and who declares it (for messages). */
export interface DeclaredSize {
  bytes: number;
  /** e.g. "the IDX header (shape [10000, 28, 28] of uint8)". */
  by: string;
}

/** gzip streams start with 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The cap in force, validated. */
export function maxBytesOf(limits: DataLimits | undefined): number {
  const cap = limits?.maxBytes ?? DEFAULT_MAX_DATA_BYTES;
  if (!(Number.isSafeInteger(cap) && cap > 0)) throw new RangeError(`maxBytes must be a positive integer, got ${cap}`);
  return cap;
}

/** Throws unless `declared` fits under the cap (checked before anything is inflated or allocated). */
export function checkDeclared(file: string, declared: DeclaredSize, cap: number): void {
  if (declared.bytes > cap) {
    throw new DataFormatError(file, `${declared.by} declares ${formatBytes(declared.bytes)}, over the limit of ${formatBytes(cap)} (raise it with the maxBytes option if the file is trusted)`);
  }
}

/**
 * Runs `decompress` bounded by `declared` (+ slack; checked against the cap first) and turns its
 * failures into DataFormatErrors naming `file`.
 */
export function decompressBounded(file: string, kind: string, compressed: Uint8Array, decompress: Decompress, declared: DeclaredSize, cap: number, also = ''): Uint8Array {
  checkDeclared(file, declared, cap);
  const limit = declared.bytes + INFLATE_SLACK;
  let out: Uint8Array | null;
  try {
    out = decompress(compressed, limit);
  } catch (e) {
    throw new DataFormatError(file, `corrupt ${kind} data (${(e as Error).message})`);
  }
  if (out === null) {
    throw new DataFormatError(file, `${kind} data inflates past ${formatBytes(limit)} although ${declared.by} declares ${formatBytes(declared.bytes)}${also}: refused (a decompression bomb or a corrupt file)`);
  }
  return out;
}

/** Options of `gunzipBounded`. */
export interface GunzipOptions extends DataLimits {
  /** Reads the size the inflated data declares from its first bytes (see `gunzipBounded`). */
  declare?: (head: Uint8Array) => DeclaredSize | null;
  /** The most a file of this format can hold, for formats without a header (CIFAR-10 batches). */
  atMost?: DeclaredSize;
}

/**
 * Gunzips `bytes` bounded by the size the inflated data declares. `declare(head)` reads that size
 * from the first inflated bytes (returning null while `head` is too short, throwing a
 * DataFormatError for a bad header); without it, or when the head cannot be peeked at, the gzip
 * trailer's ISIZE is the declaration (zlib checks it against the stream).
 *
 * @example
 * const idx = gunzipBounded(bytes, 'train-images-idx3-ubyte.gz', zlibGunzip, { declare: (head) => idxDeclaredSize(head, name) });
 */
export function gunzipBounded(
  bytes: Uint8Array,
  file: string,
  gunzip: Decompress,
  options: GunzipOptions = {},
): Uint8Array {
  const cap = maxBytesOf(options);
  // 10-byte header, at least 2 bytes of deflate data, 8-byte trailer (CRC-32, ISIZE).
  if (bytes.length < 20) throw new DataFormatError(file, `corrupt gzip data: only ${bytes.length} bytes (truncated?)`);
  const isize = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(bytes.length - 4, true);
  const trailer: DeclaredSize = { bytes: isize, by: 'the gzip trailer' };
  if (options.atMost && isize > options.atMost.bytes) {
    throw new DataFormatError(file, `the gzip trailer declares ${formatBytes(isize)}, more than ${options.atMost.by} (${formatBytes(options.atMost.bytes)})`);
  }
  const fromHeader = options.declare ? peekDeclared(bytes, gunzip, options.declare) : null;
  if (!fromHeader) return decompressBounded(file, 'gzip', bytes, gunzip, trailer, cap);
  return decompressBounded(file, 'gzip', bytes, gunzip, fromHeader, cap, ` (the gzip trailer says ${formatBytes(isize)})`);
}

/**
 * Inflates growing prefixes of the stream (output bounded by deflate's 1032:1 ratio) until
 * `declare` can read the header; null if 16 KiB of compressed data do not reach it.
 */
function peekDeclared(bytes: Uint8Array, gunzip: Decompress, declare: (head: Uint8Array) => DeclaredSize | null): DeclaredSize | null {
  for (const k of [64, 1024, 16384]) {
    let head: Uint8Array | null = null;
    try {
      head = gunzip(bytes.subarray(0, k), 1032 * k + 1024, true);
    } catch {
      // corrupt near the start: the full decompression reports it
    }
    if (head) {
      const declared = declare(head);
      if (declared) return declared;
    }
    if (k >= bytes.length) break;
  }
  return null;
}

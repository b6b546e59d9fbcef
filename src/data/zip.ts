/**
 * A minimal zip reader (enough for .npz): finds the end-of-central-directory record, walks the
 * central directory (zip64 included), and extracts stored or deflated entries, checking each
 * CRC-32. Every entry is inflated bounded by the size the directory declares (+ slack) and the
 * global cap, checked before inflating. Pure: inflating is delegated to a function the caller
 * provides (node:zlib's inflateRawSync in Node, see `nodeDecompressors`), so this module runs anywhere.
 */
import { clip, DataFormatError, formatBytes } from './errors.js';
import { decompressBounded, maxBytesOf, type DataLimits, type Decompress } from './inflate.js';
import { crc32 } from '../util/crc32.js';

export { crc32 };

/** Raw-deflate decompressor (RFC 1951, no zlib/gzip wrapper), bounded: see `Decompress`. */
export type InflateRaw = Decompress;

/** One file inside a zip archive. */
export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const U32_MAX = 0xffffffff;

/** Lists the entries of a zip archive from its central directory. */
export function listZip(bytes: Uint8Array, fileName: string): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const eocd = findEocd(view);
  if (eocd < 0) throw new DataFormatError(fileName, 'not a zip archive (no end-of-central-directory record; truncated or not an .npz?)');
  let count = view.getUint16(eocd + 10, true);
  let cdSize = view.getUint32(eocd + 12, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === U32_MAX || cdOffset === U32_MAX) {
    const locator = eocd - 20;
    if (locator < 0 || view.getUint32(locator, true) !== SIG_ZIP64_LOCATOR) throw new DataFormatError(fileName, 'zip64 archive without a zip64 locator');
    const z64 = readU64(view, locator + 8, fileName);
    if (z64 + 56 > bytes.length || view.getUint32(z64, true) !== SIG_ZIP64_EOCD) throw new DataFormatError(fileName, 'bad zip64 end-of-central-directory record');
    count = readU64(view, z64 + 32, fileName);
    cdSize = readU64(view, z64 + 40, fileName);
    cdOffset = readU64(view, z64 + 48, fileName);
  }
  if (cdOffset + cdSize > bytes.length) throw new DataFormatError(fileName, `truncated zip: the central directory ends at byte ${cdOffset + cdSize}, the file has ${bytes.length}`);

  const entries: ZipEntry[] = [];
  const cdEnd = cdOffset + cdSize;
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdEnd || view.getUint32(p, true) !== SIG_CENTRAL) throw new DataFormatError(fileName, `corrupt zip central directory at entry ${i}`);
    const flags = view.getUint16(p + 8, true);
    const nameLength = view.getUint16(p + 28, true);
    const extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    if (p + 46 + nameLength + extraLength + commentLength > cdEnd) throw new DataFormatError(fileName, `corrupt zip central directory: entry ${i} runs past its end`);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLength));
    if (flags & 1) throw new DataFormatError(fileName, `zip entry '${clip(name, 80)}' is encrypted`);
    const entry: ZipEntry = {
      name,
      method: view.getUint16(p + 10, true),
      crc32: view.getUint32(p + 16, true),
      compressedSize: view.getUint32(p + 20, true),
      size: view.getUint32(p + 24, true),
      localHeaderOffset: view.getUint32(p + 42, true),
    };
    applyZip64Extra(view, p + 46 + nameLength, extraLength, entry, fileName);
    entries.push(entry);
    p += 46 + nameLength + extraLength + commentLength;
  }
  if (p !== cdEnd) throw new DataFormatError(fileName, `corrupt zip: ${count} entries end at byte ${p}, the central directory at ${cdEnd}`);
  return entries;
}

/**
 * Extracts every entry: name -> bytes. The sizes the directory declares must fit under the cap
 * (`limits.maxBytes`, default 1 GiB), together, before anything is inflated.
 */
export function readZip(bytes: Uint8Array, fileName: string, inflateRaw: InflateRaw, limits?: DataLimits): Map<string, Uint8Array> {
  const cap = maxBytesOf(limits);
  const entries = listZip(bytes, fileName);
  const total = entries.reduce((n, e) => n + e.size, 0);
  if (total > cap) {
    throw new DataFormatError(fileName, `the zip directory declares ${formatBytes(total)} in ${entries.length} entries, over the limit of ${formatBytes(cap)} (raise it with the maxBytes option if the file is trusted)`);
  }
  const out = new Map<string, Uint8Array>();
  for (const entry of entries) {
    if (out.has(entry.name)) throw new DataFormatError(fileName, `zip entry '${clip(entry.name, 80)}' appears twice`);
    out.set(entry.name, extractEntry(bytes, entry, fileName, inflateRaw, limits));
  }
  return out;
}

/** The uncompressed bytes of one entry, CRC-checked, inflated no further than its declared size. */
export function extractEntry(bytes: Uint8Array, entry: ZipEntry, fileName: string, inflateRaw: InflateRaw, limits?: DataLimits): Uint8Array {
  const where = `${fileName}:${clip(entry.name, 80)}`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = entry.localHeaderOffset;
  if (h + 30 > bytes.length || view.getUint32(h, true) !== SIG_LOCAL) throw new DataFormatError(where, 'bad zip local header');
  const localNameLength = view.getUint16(h + 26, true);
  const start = h + 30 + localNameLength + view.getUint16(h + 28, true);
  const end = start + entry.compressedSize;
  if (end > bytes.length) throw new DataFormatError(where, `truncated zip entry: needs bytes up to ${end}, the archive has ${bytes.length}`);
  const localName = new TextDecoder().decode(bytes.subarray(h + 30, h + 30 + localNameLength));
  if (localName !== entry.name) throw new DataFormatError(where, `the local header names the entry '${clip(localName, 80)}': the archive is corrupt`);
  const stored = bytes.subarray(start, end);
  let data: Uint8Array;
  if (entry.method === 0) data = stored;
  else if (entry.method === 8) {
    data = decompressBounded(where, 'deflate', stored, inflateRaw, { bytes: entry.size, by: 'the zip directory' }, maxBytesOf(limits));
  } else throw new DataFormatError(where, `unsupported zip compression method ${entry.method} (only 0 = stored and 8 = deflate)`);
  if (data.length !== entry.size) throw new DataFormatError(where, `inflated to ${data.length} bytes, the directory says ${entry.size}`);
  const crc = crc32(data);
  if (crc !== entry.crc32) throw new DataFormatError(where, `CRC-32 mismatch (computed ${hex(crc)}, stored ${hex(entry.crc32)}): the archive is corrupt`);
  return data;
}

function findEocd(view: DataView): number {
  // The record is 22 bytes plus a comment of at most 65535 bytes, at the very end.
  const last = view.byteLength - 22;
  for (let p = last; p >= 0 && p >= last - 0xffff; p--) {
    if (view.getUint32(p, true) === SIG_EOCD && p + 22 + view.getUint16(p + 20, true) === view.byteLength) return p;
  }
  return -1;
}

function applyZip64Extra(view: DataView, start: number, length: number, entry: ZipEntry, fileName: string): void {
  let p = start;
  while (p + 4 <= start + length) {
    const id = view.getUint16(p, true);
    const size = view.getUint16(p + 2, true);
    if (p + 4 + size > start + length) throw new DataFormatError(fileName, `corrupt zip extra field in entry '${clip(entry.name, 80)}'`);
    if (id === 0x0001) {
      // Present in this order, and only for the fields saturated in the fixed record.
      let q = p + 4;
      const next = (): number => {
        if (q + 8 > p + 4 + size) throw new DataFormatError(fileName, `zip64 extra field of entry '${clip(entry.name, 80)}' is too short`);
        q += 8;
        return readU64(view, q - 8, fileName);
      };
      if (entry.size === U32_MAX) entry.size = next();
      if (entry.compressedSize === U32_MAX) entry.compressedSize = next();
      if (entry.localHeaderOffset === U32_MAX) entry.localHeaderOffset = next();
    }
    p += 4 + size;
  }
}

function readU64(view: DataView, p: number, fileName: string): number {
  const v = view.getBigUint64(p, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DataFormatError(fileName, `zip64 field ${v} is too large`);
  return Number(v);
}

function hex(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}


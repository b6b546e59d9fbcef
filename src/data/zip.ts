/**
 * A minimal zip reader (enough for .npz): finds the end-of-central-directory record, walks the
 * central directory (zip64 included), and extracts stored or deflated entries, checking each
 * CRC-32. Pure: inflating is delegated to a function the caller provides (node:zlib's
 * inflateRawSync in Node), so this module runs anywhere.
 */
import { DataFormatError } from './errors.js';
import { crc32 } from '../util/crc32.js';

export { crc32 };

/** Raw-deflate decompressor (RFC 1951, no zlib/gzip wrapper). */
export type InflateRaw = (compressed: Uint8Array) => Uint8Array;

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
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > bytes.length || view.getUint32(p, true) !== SIG_CENTRAL) throw new DataFormatError(fileName, `corrupt zip central directory at entry ${i}`);
    const flags = view.getUint16(p + 8, true);
    const nameLength = view.getUint16(p + 28, true);
    const extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLength));
    if (flags & 1) throw new DataFormatError(fileName, `zip entry '${name}' is encrypted`);
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
  return entries;
}

/** Extracts every entry: name -> bytes. */
export function readZip(bytes: Uint8Array, fileName: string, inflateRaw: InflateRaw): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const entry of listZip(bytes, fileName)) out.set(entry.name, extractEntry(bytes, entry, fileName, inflateRaw));
  return out;
}

/** The uncompressed bytes of one entry, CRC-checked. */
export function extractEntry(bytes: Uint8Array, entry: ZipEntry, fileName: string, inflateRaw: InflateRaw): Uint8Array {
  const where = `${fileName}:${entry.name}`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = entry.localHeaderOffset;
  if (h + 30 > bytes.length || view.getUint32(h, true) !== SIG_LOCAL) throw new DataFormatError(where, 'bad zip local header');
  const start = h + 30 + view.getUint16(h + 26, true) + view.getUint16(h + 28, true);
  const end = start + entry.compressedSize;
  if (end > bytes.length) throw new DataFormatError(where, `truncated zip entry: needs bytes up to ${end}, the archive has ${bytes.length}`);
  const stored = bytes.subarray(start, end);
  let data: Uint8Array;
  if (entry.method === 0) data = stored;
  else if (entry.method === 8) {
    try {
      data = inflateRaw(stored);
    } catch (e) {
      throw new DataFormatError(where, `corrupt deflate data (${(e as Error).message})`);
    }
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
    if (id === 0x0001) {
      // Present in this order, and only for the fields saturated in the fixed record.
      let q = p + 4;
      if (entry.size === U32_MAX) { entry.size = readU64(view, q, fileName); q += 8; }
      if (entry.compressedSize === U32_MAX) { entry.compressedSize = readU64(view, q, fileName); q += 8; }
      if (entry.localHeaderOffset === U32_MAX) entry.localHeaderOffset = readU64(view, q, fileName);
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


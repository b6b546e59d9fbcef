/** Node file loader for tabular CSV data (kept apart so src/data/tabular.ts stays browser-safe). */
import { readFileSync, statSync } from 'node:fs';
import { DataFormatError, formatBytes } from './errors.js';
import { maxBytesOf, type DataLimits } from './inflate.js';
import { loadTabular, type TabularDataset, type TabularOptions } from './tabular.js';

/** V8's longest string (2^29 - 24 UTF-16 units): a CSV file longer than this cannot be decoded at all. */
const MAX_TEXT = 2 ** 29 - 24;

/**
 * Decodes CSV bytes (strict UTF-8, a BOM skipped) and encodes them (see `encodeTabular` for the
 * rules). Every problem with the data is a DataFormatError naming `name`; the size is checked
 * against `maxBytes` (default 1 GiB, at most V8's longest string) before decoding.
 * @example const ds = parseTabularFile(new TextEncoder().encode('a,y\n1,no\n2,yes\n3,no\n'), 'tiny.csv', { label: 'y' });
 */
export function parseTabularFile(bytes: Uint8Array, name: string, options: TabularOptions & DataLimits): TabularDataset {
  const cap = Math.min(maxBytesOf(options), MAX_TEXT);
  if (bytes.length > cap) throw new DataFormatError(name, `${formatBytes(bytes.length)} of CSV, over the limit of ${formatBytes(cap)}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DataFormatError(name, 'not UTF-8 text (re-save the CSV as UTF-8)');
  }
  try {
    return loadTabular(text, options);
  } catch (e) {
    // The parser's and encoder's own errors are about this file's contents; anything else is a bug.
    if (e instanceof Error && /^(parseCsv|encodeTabular): /.test(e.message)) throw new DataFormatError(name, e.message);
    throw e;
  }
}

/**
 * Reads a CSV file and encodes it (see `encodeTabular` for the rules). Errors name the file.
 * @example const adult = readTabularFile('../shared/data/tabular/adult.csv', { label: 'class', drop: ['fnlwgt'] });
 */
export function readTabularFile(path: string, options: TabularOptions & DataLimits): TabularDataset {
  let bytes: Uint8Array;
  try {
    const size = statSync(path).size;
    const cap = Math.min(maxBytesOf(options), MAX_TEXT);
    if (size > cap) throw new DataFormatError(path, `${formatBytes(size)} of CSV, over the limit of ${formatBytes(cap)}`);
    bytes = readFileSync(path);
  } catch (e) {
    if (e instanceof DataFormatError) throw e;
    throw new Error(`readTabularFile: cannot read '${path}': ${(e as Error).message}`);
  }
  return parseTabularFile(bytes, path, options);
}

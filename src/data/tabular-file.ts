/** Node file loader for tabular CSV data (kept apart so src/data/tabular.ts stays browser-safe). */
import { readFileSync, statSync } from 'node:fs';
import { DataFormatError, formatBytes } from './errors.js';
import { maxBytesOf, type DataLimits } from './inflate.js';
import { MAX_TEXT, parseTabularFile, type TabularDataset, type TabularOptions } from './tabular.js';

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

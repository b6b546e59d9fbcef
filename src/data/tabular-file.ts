/** Node file loader for tabular CSV data (kept apart so src/data/tabular.ts stays browser-safe). */
import { readFileSync } from 'node:fs';
import { loadTabular, type TabularDataset, type TabularOptions } from './tabular.js';

/**
 * Reads a CSV file and encodes it (see `encodeTabular` for the rules). Errors name the file.
 * @example const adult = readTabularFile('../shared/data/tabular/adult.csv', { label: 'class', drop: ['fnlwgt'] });
 */
export function readTabularFile(path: string, options: TabularOptions): TabularDataset {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`readTabularFile: cannot read '${path}': ${(e as Error).message}`);
  }
  try {
    return loadTabular(text, options);
  } catch (e) {
    const err = e as Error;
    err.message = `${path}: ${err.message}`;
    throw err;
  }
}

/** Pieces shared by several commands: the --data option, dataset splits, --threads, environment checks. */
import { envThreads, listBackends, setBackend, setThreads, useFastestBackend } from '../backends/index.js';
import { DATASET_NAMES } from '../data/catalog.js';
import { loadSplits, type Splits } from '../data/splits.js';
import { UsageError } from './command.js';
import type { OptionSpec, ParsedOptions } from './options.js';

export const DATA_OPTION: OptionSpec = { name: 'data', type: 'string', default: 'synthetic', help: `dataset: ${DATASET_NAMES.filter((d) => !d.startsWith('<')).join(', ')} or a FILE.npz` };

/** Loads a dataset's splits; bad names or fractions become usage errors (file errors keep their own message). */
export async function dataSplits(name: string, dataDir: string | undefined, seed: number, limit?: number, valFraction = 0): Promise<Splits> {
  try {
    return await loadSplits(name, { dataDir, seed, limit, valFraction });
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
}

/** Applies --threads when given. */
export function applyThreads(o: ParsedOptions): void {
  const n = o.int('threads');
  if (n !== undefined) setThreads(n);
}

/**
 * Checks SLIMGRAD_THREADS and SLIMGRAD_BACKEND and selects the backend (SLIMGRAD_BACKEND, else the
 * fastest); returns a one-line problem, or null.
 */
export function applyEnvironment(): string | null {
  try {
    envThreads();
  } catch (e) {
    return (e as Error).message;
  }
  useFastestBackend();
  const backend = process.env.SLIMGRAD_BACKEND;
  if (backend) {
    if (!listBackends().includes(backend)) return `SLIMGRAD_BACKEND must be one of ${listBackends().join(', ')}, got '${backend}'`;
    setBackend(backend);
  }
  return null;
}

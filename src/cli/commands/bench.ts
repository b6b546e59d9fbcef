import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError, type Command } from '../command.js';

/**
 * `slimgrad bench <suite> [--json]`: runs bench/main.ts from the package's sources under tsx in a
 * child process (the suites and their baselines are dev-only: not compiled into dist, not shipped).
 */
export const bench: Command = {
  name: 'bench',
  summary: 'run a benchmark suite (data, engine, explain, act, quant) [--json]; needs a clone with its dev dependencies',
  async run(args) {
    // The package root is three folders up from src/cli/commands (tsx) or four from dist/src/cli/commands.
    const entry = ['../../../bench/main.ts', '../../../../bench/main.ts'].map((p) => fileURLToPath(new URL(p, import.meta.url))).find(existsSync);
    let tsx: string;
    try {
      tsx = import.meta.resolve('tsx');
    } catch {
      throw new UsageError('bench: needs the dev dependencies (run `npm install` in a clone of slimgrad)');
    }
    if (!entry) throw new UsageError('bench: bench/main.ts not found (benchmarks run from a clone of slimgrad)');
    const r = spawnSync(process.execPath, ['--import', tsx, entry, ...args], { stdio: 'inherit' });
    return r.status ?? 1;
  },
};

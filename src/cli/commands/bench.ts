import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError, type Command } from '../command.js';
import { formatHelp, wantsHelp, type CommandSpec } from '../options.js';

export const benchSpec: CommandSpec = {
  name: 'bench',
  summary: 'run a benchmark suite: a table, then one JSON object as the last line with --json; needs a clone with its dev dependencies',
  description:
    'Suites live in bench/SUITE.ts (listed by `slimgrad bench` without a suite); options after SUITE go to the suite, each documents its flags at the top of its file (all take --json).',
  positionals: [{ name: 'SUITE', help: 'data, engine, act, quant, explain, ... (see bench/main.ts)' }],
  options: [],
  examples: ['slimgrad bench data --json', 'slimgrad bench quant'],
};

/**
 * `slimgrad bench <suite> [--json]`: runs bench/main.ts from the package's sources under tsx in a
 * child process (the suites and their baselines are dev-only: not compiled into dist, not shipped).
 */
export const bench: Command = {
  name: 'bench',
  summary: benchSpec.summary,
  spec: benchSpec,
  async run(args) {
    if (args.length > 0 && wantsHelp(args.slice(0, 1))) {
      console.log(formatHelp(benchSpec));
      return 0;
    }
    // The package root is three folders up from src/cli/commands (tsx) or four from dist/src/cli/commands.
    const entry = ['../../../bench/main.ts', '../../../../bench/main.ts'].map((p) => fileURLToPath(new URL(p, import.meta.url))).find(existsSync);
    let tsx: string;
    try {
      tsx = import.meta.resolve('tsx');
    } catch {
      throw new UsageError('needs the dev dependencies (run `npm install` in a clone of slimgrad)');
    }
    if (!entry) throw new UsageError('bench/main.ts not found (benchmarks run from a clone of slimgrad)');
    const r = spawnSync(process.execPath, ['--import', tsx, entry, ...args], { stdio: 'inherit' });
    return r.status ?? 1;
  },
};

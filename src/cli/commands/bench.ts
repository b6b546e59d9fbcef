import { UsageError } from '../command.js';
import { didYouMean, formatHelp, wantsHelp, type CommandSpec } from '../options.js';
import type { Command } from '../command.js';

/** `slimgrad bench <suite> [--json]`: each suite lives in bench/<suite>.ts and exports `run`. */
const suites: Record<string, () => Promise<{ run(args: string[]): Promise<number> }>> = {
  data: () => import('../../../bench/data.js'),
  engine: () => import('../../../bench/engine.js'),
  explain: () => import('../../../bench/explain.js'),
  act: () => import('../../../bench/act.js'),
  quant: () => import('../../../bench/quant.js'),
};

export const benchSpec: CommandSpec = {
  name: 'bench',
  summary: `run a benchmark suite (${Object.keys(suites).join(', ')}): a table, then one JSON object as the last line with --json`,
  description: 'Options after SUITE go to the suite; each suite documents its own flags at the top of bench/SUITE.ts (all take --json).',
  positionals: [{ name: 'SUITE', help: Object.keys(suites).join(', ') }],
  options: [],
  examples: ['slimgrad bench data --json', 'slimgrad bench quant'],
};

export const bench: Command = {
  name: 'bench',
  summary: benchSpec.summary,
  spec: benchSpec,
  async run(args) {
    const [suite, ...rest] = args;
    if (suite === undefined) throw new UsageError(`give a suite: ${Object.keys(suites).join(', ')} (see slimgrad bench --help)`);
    if (wantsHelp([suite])) {
      console.log(formatHelp(benchSpec));
      return 0;
    }
    if (!(suite in suites)) throw new UsageError(`unknown suite '${suite}'${didYouMean(suite, Object.keys(suites))} (available: ${Object.keys(suites).join(', ')})`);
    const mod = await suites[suite]!();
    return mod.run(rest);
  },
};

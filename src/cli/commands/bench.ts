import { UsageError, type Command } from '../command.js';

/** `slimgrad bench <suite> [--json]`: each suite lives in bench/<suite>.ts and exports `run`. */
const suites: Record<string, () => Promise<{ run(args: string[]): Promise<number> }>> = {
  data: () => import('../../../bench/data.js'),
  engine: () => import('../../../bench/engine.js'),
  explain: () => import('../../../bench/explain.js'),
  act: () => import('../../../bench/act.js'),
  quant: () => import('../../../bench/quant.js'),
  ptq: () => import('../../../bench/ptq.js'),
};

export const bench: Command = {
  name: 'bench',
  summary: `run a benchmark suite: ${Object.keys(suites).join(', ') || '(none yet)'} [--json]`,
  async run(args) {
    const [suite, ...rest] = args;
    if (!suite || !(suite in suites)) {
      throw new UsageError(`bench: unknown suite '${suite ?? ''}' (available: ${Object.keys(suites).join(', ')})`);
    }
    const mod = await suites[suite]!();
    return mod.run(rest);
  },
};

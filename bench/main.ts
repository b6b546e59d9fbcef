// Entry of the benchmark suites: `node --import tsx bench/main.ts <suite> [args]` (what
// `slimgrad bench` runs). Benches run from the sources of a clone (dev dependencies: tsx, the tfjs
// baselines); they are not compiled into dist and not shipped.
import { UsageError } from '../src/cli/command.js';
import { DataFormatError } from '../src/data/errors.js';
import { OutputPathError } from '../src/io/write.js';
import { DeployedModelError } from '../src/quant/check.js';
import { didYouMean } from '../src/cli/options.js';
import { applyEnvironment } from '../src/cli/shared.js';

/** Each suite lives in bench/<suite>.ts and exports `run`. */
const suites: Record<string, () => Promise<{ run(args: string[]): Promise<number> }>> = {
  data: () => import('./data.js'),
  hostile: () => import('./hostile.js'),
  engine: () => import('./engine.js'),
  explain: () => import('./explain.js'),
  act: () => import('./act.js'),
  quant: () => import('./quant.js'),
  ptq: () => import('./ptq.js'),
  pipeline: () => import('./pipeline.js'),
  transformer: () => import('./transformer.js'),
  browser: () => import('./browser.js'),
  qat: () => import('./qat.js'),
  conv: () => import('./conv.js'),
};

export async function main(args: string[]): Promise<number> {
  const [suite, ...rest] = args;
  const names = Object.keys(suites);
  if (!suite) throw new UsageError(`slimgrad bench: give a suite: ${names.join(', ')}`);
  if (!(suite in suites)) throw new UsageError(`slimgrad bench: unknown suite '${suite}'${didYouMean(suite, names)} (available: ${names.join(', ')})`);
  // As for every CLI command: SLIMGRAD_THREADS / SLIMGRAD_BACKEND checked, else the fastest backend.
  const problem = applyEnvironment();
  if (problem) throw new UsageError(`slimgrad bench: ${problem}`);
  const mod = await suites[suite]!();
  return mod.run(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  // A user's mistake (an option, a data directory, a model or output file) is one line, as in the
  // CLI; anything else is a bug in the bench and keeps its stack.
  const file = e instanceof DataFormatError || e instanceof DeployedModelError || e instanceof OutputPathError;
  // node:util parseArgs in a suite: an unknown option or a missing value.
  const option = String((e as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS');
  if (!(e instanceof UsageError) && !file && !option) throw e;
  console.error(file ? `slimgrad bench: ${(e as Error).message}` : option ? `slimgrad bench ${process.argv[2]}: ${(e as Error).message}` : (e as Error).message);
  if (process.env.SLIMGRAD_DEBUG) console.error((e as Error).stack);
  process.exitCode = file ? 1 : 2;
}

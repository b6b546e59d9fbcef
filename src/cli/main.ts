import { readFileSync } from 'node:fs';
import { UsageError, type Command } from './command.js';
import { bench } from './commands/bench.js';
import { convert } from './commands/convert.js';
import { data } from './commands/data.js';
import { evaluateCommand } from './commands/eval.js';
import { explain } from './commands/explain.js';
import { infer } from './commands/infer.js';
import { pipeline, stage } from './commands/pipeline.js';
import { summary } from './commands/summary.js';
import { train } from './commands/train.js';
import { didYouMean, formatHelp } from './options.js';
import { applyEnvironment } from './shared.js';
import { quantize } from './commands/quantize.js';

/** Every command, in the order `slimgrad --help` lists them. */
export const commands: Command[] = [train, evaluateCommand, summary, convert, infer, data, explain, quantize, pipeline, stage, bench];

/** The package version (package.json next to src/ or dist/). */
export function version(): string {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      // not at this depth
    }
  }
  return 'unknown';
}

function usage(): string {
  return [
    'usage: slimgrad <command> [options]',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    'slimgrad <command> --help (or slimgrad help <command>) lists its options with an example; slimgrad --version prints the version.',
    'environment: SLIMGRAD_THREADS=N kernel threads, SLIMGRAD_BACKEND=wasm|reference kernels, SLIMGRAD_DEBUG=1 stack traces on errors',
  ].join('\n');
}

/** Runs the CLI; returns the exit code (0 ok, 1 failure, 2 usage error). Errors print one line, never a stack. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V') {
    console.log(`slimgrad ${version()}`);
    return 0;
  }
  if (!name || name === '--help' || name === '-h') {
    (name ? console.log : console.error)(usage());
    return name ? 0 : 2;
  }
  const find = (n: string) => commands.find((c) => c.name === n);
  if (name === 'help') {
    if (!rest[0]) {
      console.log(usage());
      return 0;
    }
    const c = find(rest[0]);
    if (!c) return unknownCommand(rest[0]);
    console.log(formatHelp(c.spec));
    return 0;
  }
  const cmd = find(name);
  if (!cmd) return unknownCommand(name);
  const envProblem = applyEnvironment();
  if (envProblem) {
    console.error(`slimgrad: ${envProblem}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    const err = e as Error;
    console.error(`slimgrad ${name}: ${err?.message ?? String(e)}`);
    if (process.env.SLIMGRAD_DEBUG) console.error(err?.stack);
    return e instanceof UsageError ? 2 : 1;
  }
}

function unknownCommand(name: string): number {
  console.error(`slimgrad: unknown command '${name}'${didYouMean(name, commands.map((c) => c.name))} (commands: ${commands.map((c) => c.name).join(', ')}; see slimgrad --help)`);
  return 2;
}

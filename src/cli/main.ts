import { readFileSync } from 'node:fs';
import { UsageError, type Command } from './command.js';
import { didYouMean, formatHelp } from './options.js';
import { applyEnvironment } from './shared.js';

/**
 * Every command by name, in the order `slimgrad --help` lists them, each module imported only when
 * it runs: a training run does not hold the explain, ONNX, pipeline and bench code (~7 MiB).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  train: async () => (await import('./commands/train.js')).train,
  eval: async () => (await import('./commands/eval.js')).evaluateCommand,
  summary: async () => (await import('./commands/summary.js')).summary,
  convert: async () => (await import('./commands/convert.js')).convert,
  infer: async () => (await import('./commands/infer.js')).infer,
  data: async () => (await import('./commands/data.js')).data,
  explain: async () => (await import('./commands/explain.js')).explain,
  quantize: async () => (await import('./commands/quantize.js')).quantize,
  pipeline: async () => (await import('./commands/pipeline.js')).pipeline,
  stage: async () => (await import('./commands/pipeline.js')).stage,
  bench: async () => (await import('./commands/bench.js')).bench,
};

/** Every command (all modules imported), in help order. */
export async function loadCommands(): Promise<Command[]> {
  return Promise.all(Object.values(COMMANDS).map((load) => load()));
}

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

async function usage(): Promise<string> {
  return [
    'usage: slimgrad <command> [options]',
    '',
    ...(await loadCommands()).map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
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
    (name ? console.log : console.error)(await usage());
    return name ? 0 : 2;
  }
  const find = (n: string) => (Object.hasOwn(COMMANDS, n) ? COMMANDS[n]!() : null);
  if (name === 'help') {
    if (!rest[0]) {
      console.log(await usage());
      return 0;
    }
    const c = await find(rest[0]);
    if (!c) return unknownCommand(rest[0]);
    console.log(formatHelp(c.spec));
    return 0;
  }
  const cmd = await find(name);
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

/**
 * The process entry (bin/slimgrad.js, src/cli/run.ts): `main`, with a closed stdout pipe
 * (`slimgrad data mnist | head`) ending the process quietly instead of with an EPIPE stack.
 */
export async function runProcess(argv: string[]): Promise<number> {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(process.exitCode ?? 0);
  });
  return main(argv);
}

function unknownCommand(name: string): number {
  const names = Object.keys(COMMANDS);
  console.error(`slimgrad: unknown command '${name}'${didYouMean(name, names)} (commands: ${names.join(', ')}; see slimgrad --help)`);
  return 2;
}

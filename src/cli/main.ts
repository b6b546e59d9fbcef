import { setBackend } from '../backends/index.js';
import { useFastestBackend } from '../backends/wasm/index.js';
import { UsageError, type Command } from './command.js';
import { bench } from './commands/bench.js';
import { convert } from './commands/convert.js';
import { data } from './commands/data.js';
import { explain } from './commands/explain.js';
import { infer } from './commands/infer.js';
import { summary } from './commands/summary.js';
import { train } from './commands/train.js';
import { quantize } from './commands/quantize.js';

const commands: Command[] = [train, summary, convert, infer, data, explain, bench, quantize];

function usage(): string {
  return ['usage: slimgrad <command> [options]', '', ...commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`)].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  useFastestBackend();
  // SLIMGRAD_BACKEND=reference runs everything on the plain-TypeScript kernels (the oracle).
  if (process.env.SLIMGRAD_BACKEND) setBackend(process.env.SLIMGRAD_BACKEND);
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    console.error(`slimgrad: unknown command '${name}'\n${usage()}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (e instanceof UsageError || err.code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`slimgrad ${name}: ${err.message}`);
      return 2;
    }
    // Errors from the library name the op, file or shape at fault: print them without a stack.
    console.error(`slimgrad ${name}: ${err.message ?? String(e)}`);
    if (process.env.SLIMGRAD_DEBUG) console.error(err.stack);
    return 1;
  }
}

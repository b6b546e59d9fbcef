import { UsageError, type Command } from './command.js';
import { bench } from './commands/bench.js';

const commands: Command[] = [bench];

function usage(): string {
  return ['usage: slimgrad <command> [options]', '', ...commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`)].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    console.error(`slimgrad: unknown command '${name}'\n${usage()}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`slimgrad ${name}: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

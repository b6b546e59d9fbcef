// Running the CLI in tests: in this process (main(), output captured) or in a fresh Node process.
import { spawnSync } from 'node:child_process';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `slimgrad ...args` in this process, capturing what it prints. */
export async function cli(...args: string[]): Promise<CliResult> {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  const write = process.stdout.write.bind(process.stdout);
  console.log = (...a: unknown[]) => void out.push(a.join(' ') + '\n');
  console.error = (...a: unknown[]) => void err.push(a.join(' ') + '\n');
  // Text writes are the command's (the test reporter writes binary chunks, passed through).
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => (typeof chunk === 'string' ? (out.push(chunk), true) : write(chunk, ...rest))) as typeof process.stdout.write;
  try {
    const code = await main(args);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    Object.assign(console, { log, error });
    process.stdout.write = write;
  }
}

/** Runs `slimgrad ...args` in a fresh Node process (from source), with extra environment variables. */
export function cliFresh(args: string[], env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs several `slimgrad` command lines one after another in one fresh Node process; returns its exit code (the first failing one's) and output. */
export function cliFreshBatch(commands: string[][]): CliResult {
  const script = "const { main } = await import('./src/cli/main.ts'); for (const a of JSON.parse(process.argv[1])) { const c = await main(a); if (c) process.exit(c); }";
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, JSON.stringify(commands)], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The JSON object on the last line of a --json run. */
export function lastJson(r: CliResult): any {
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!);
}

import type { CommandSpec } from './options.js';

/** A CLI subcommand. `run` gets the arguments after the subcommand name and returns an exit code. */
export interface Command {
  name: string;
  summary: string;
  /** The option table behind its parser and its help. */
  spec: CommandSpec;
  run(args: string[]): Promise<number>;
}

/** Thrown for bad command-line input: printed as one line, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Prints the one-JSON-object-last-line report used by every `--json` command. */
export function printJson(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/** Prints an aligned text table. */
export function printTable(rows: Record<string, unknown>[], columns?: string[]): void {
  if (rows.length === 0) return;
  const cols = columns ?? Object.keys(rows[0]!);
  const cell = (v: unknown): string =>
    v === null || v === undefined ? '-' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v);
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padStart(widths[i]!)).join('  ');
  console.log(line(cols));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(cols.map((c) => cell(r[c]))));
}

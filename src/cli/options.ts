/**
 * Declarative command-line options: one table per command drives both the parser (types, ranges,
 * choices, defaults, did-you-mean for typos) and the generated `--help`, so they cannot drift.
 *
 * @example
 * const spec: CommandSpec = {
 *   name: 'demo', summary: 'shows the parser',
 *   options: [{ name: 'epochs', type: 'int', min: 1, default: 3, help: 'passes over the data' }],
 *   examples: ['slimgrad demo --epochs 2'],
 * };
 * parseOptions(spec, ['--epochs', '2']).int('epochs'); // 2
 */
import { UsageError, type Command } from './command.js';

export type OptionType = 'string' | 'file' | 'int' | 'number' | 'boolean' | 'choice' | 'list';

export interface OptionSpec {
  /** Flag name without the leading dashes. */
  name: string;
  type: OptionType;
  help: string;
  default?: string | number | boolean;
  /** Allowed values of a 'choice' option. */
  choices?: readonly string[];
  /** Inclusive lower bound of 'int' / 'number'. */
  min?: number;
  /** Exclusive lower bound of 'number'. */
  above?: number;
  /** Inclusive upper bound, or exclusive with `belowMax`. */
  max?: number;
  belowMax?: boolean;
  required?: boolean;
}

export interface PositionalSpec {
  name: string;
  help: string;
}

export interface CommandSpec {
  name: string;
  /** One line for `slimgrad --help`. */
  summary: string;
  /** Extra paragraph for the command's own help. */
  description?: string;
  positionals?: PositionalSpec[];
  options: OptionSpec[];
  /** At least one runnable example. */
  examples: string[];
}

/** Shared by every command that runs kernels. */
export const THREADS_OPTION: OptionSpec = { name: 'threads', type: 'int', min: 1, help: 'kernel threads (default: SLIMGRAD_THREADS, else all cores)' };
export const JSON_OPTION: OptionSpec = { name: 'json', type: 'boolean', default: false, help: 'print one JSON object as the last line of output' };
export const FORCE_OPTION: OptionSpec = { name: 'force', type: 'boolean', default: false, help: 'overwrite an existing output file' };
export const DATA_DIR_OPTION: OptionSpec = { name: 'data-dir', type: 'file', help: 'folder of the dataset files (mnist: IDX files, cifar10: binary batches)' };
export const HELP_FLAGS = ['--help', '-h'];

/** Levenshtein distance (for "did you mean"). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** ` (did you mean X?)` for the closest candidate within a small edit distance or sharing a prefix, else ''. */
export function didYouMean(word: string, candidates: readonly string[], prefix = ''): string {
  let best: string | undefined, bestD = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) || word.startsWith(c) ? 1 : editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean ${prefix}${best}?)` : '';
}

function placeholder(o: OptionSpec): string {
  switch (o.type) {
    case 'boolean':
      return '';
    case 'choice':
      return ` ${o.choices!.join('|')}`;
    case 'file':
      return ' PATH';
    case 'list':
      return ' A,B,...';
    case 'int':
      return ' N';
    case 'number':
      return ' X';
    default:
      return ' VALUE';
  }
}

function constraint(o: OptionSpec): string {
  if (o.type !== 'int' && o.type !== 'number') return '';
  const bounds: string[] = [];
  if (o.min !== undefined) bounds.push(`>= ${o.min}`);
  if (o.above !== undefined) bounds.push(`> ${o.above}`);
  if (o.max !== undefined) bounds.push(`${o.belowMax ? '<' : '<='} ${o.max}`);
  return `${o.type === 'int' ? 'integer' : 'number'}${bounds.length ? ` ${bounds.join(', ')}` : ''}`;
}

/** The command's help text, generated from its table. */
export function formatHelp(spec: CommandSpec): string {
  const pos = (spec.positionals ?? []).map((p) => ` ${p.name}`).join('');
  const rows: [string, string][] = spec.options.map((o) => {
    const notes = [constraint(o), o.required ? 'required' : o.default !== undefined && o.default !== false ? `default ${o.default}` : ''].filter(Boolean).join('; ');
    return [`--${o.name}${placeholder(o)}`, `${o.help}${notes ? ` (${notes})` : ''}`];
  });
  rows.push(['-h, --help', 'show this help']);
  const width = Math.min(30, Math.max(...rows.map(([f]) => f.length), ...(spec.positionals ?? []).map((p) => p.name.length)));
  const fmt = ([f, h]: [string, string]) => (f.length > width ? `  ${f}\n  ${' '.repeat(width)}  ${h}` : `  ${f.padEnd(width)}  ${h}`);
  return [
    `slimgrad ${spec.name}: ${spec.summary}`,
    '',
    `usage: slimgrad ${spec.name}${pos}${spec.options.length ? ' [options]' : ''}`,
    ...(spec.description ? ['', spec.description] : []),
    ...(spec.positionals?.length ? ['', 'arguments:', ...spec.positionals.map((p) => fmt([p.name, p.help]))] : []),
    '',
    'options:',
    ...rows.map(fmt),
    '',
    spec.examples.length > 1 ? 'examples:' : 'example:',
    ...spec.examples.map((e) => `  ${e}`),
  ].join('\n');
}

/** Parsed, validated options; reading a flag the table does not declare is a programming error. */
export class ParsedOptions {
  constructor(
    private readonly spec: CommandSpec,
    private readonly values: Map<string, string | number | boolean | string[]>,
    private readonly givenFlags: Set<string>,
    readonly positionals: string[],
  ) {}

  private get(name: string, type: OptionType[]): string | number | boolean | string[] | undefined {
    const o = this.spec.options.find((x) => x.name === name);
    if (!o || !type.includes(o.type)) throw new Error(`slimgrad ${this.spec.name}: option --${name} (${type.join('/')}) is not in the command's table`);
    return this.values.get(name);
  }

  string(name: string): string | undefined {
    return this.get(name, ['string', 'file', 'choice']) as string | undefined;
  }

  int(name: string): number | undefined {
    return this.get(name, ['int']) as number | undefined;
  }

  number(name: string): number | undefined {
    return this.get(name, ['number', 'int']) as number | undefined;
  }

  bool(name: string): boolean {
    return this.get(name, ['boolean']) === true;
  }

  list(name: string): string[] | undefined {
    return this.get(name, ['list']) as string[] | undefined;
  }

  /** Whether the user gave the flag (rather than it taking its default). */
  given(name: string): boolean {
    return this.givenFlags.has(name);
  }
}

function convert(o: OptionSpec, raw: string): string | number | string[] {
  const flag = `--${o.name}`;
  switch (o.type) {
    case 'int':
    case 'number': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(n)) throw new UsageError(`${flag} must be ${o.type === 'int' ? 'an integer' : 'a number'}, got '${raw}'`);
      if (o.type === 'int' && !Number.isInteger(n)) throw new UsageError(`${flag} must be an integer, got ${raw}`);
      if (o.min !== undefined && n < o.min) throw new UsageError(`${flag} must be >= ${o.min}, got ${raw}`);
      if (o.above !== undefined && !(n > o.above)) throw new UsageError(`${flag} must be > ${o.above}, got ${raw}`);
      if (o.max !== undefined && (o.belowMax ? n >= o.max : n > o.max)) throw new UsageError(`${flag} must be ${o.belowMax ? '<' : '<='} ${o.max}, got ${raw}`);
      return n;
    }
    case 'choice':
      if (!o.choices!.includes(raw)) throw new UsageError(`${flag} must be one of ${o.choices!.join(', ')}, got '${raw}'${didYouMean(raw, o.choices!)}`);
      return raw;
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    default:
      if (raw === '') throw new UsageError(`${flag} needs a non-empty value`);
      return raw;
  }
}

/**
 * Parses `args` against the command's table: `--name value`, `--name=value`, boolean `--flag`,
 * positionals. Throws UsageError naming the flag for unknown flags (with a suggestion), missing or
 * invalid values and missing required flags. The caller handles `--help` first (see wantsHelp).
 */
export function parseOptions(spec: CommandSpec, args: string[]): ParsedOptions {
  const values = new Map<string, string | number | boolean | string[]>();
  const given = new Set<string>();
  const positionals: string[] = [];
  const names = spec.options.map((o) => o.name);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-') || a === '-') {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.replace(/^--?/, '').slice(0, eq < 0 ? undefined : eq - (a.startsWith('--') ? 2 : 1));
    const o = spec.options.find((x) => x.name === name);
    if (!o || !a.startsWith('--')) throw new UsageError(`unknown option ${a.slice(0, eq < 0 ? undefined : eq)}${didYouMean(name, names, '--')} (see slimgrad ${spec.name} --help)`);
    if (given.has(name)) throw new UsageError(`--${name} is given twice`);
    given.add(name);
    if (o.type === 'boolean') {
      if (eq >= 0) throw new UsageError(`--${name} is a switch and takes no value`);
      values.set(name, true);
      continue;
    }
    const raw = eq >= 0 ? a.slice(eq + 1) : args[++i];
    if (raw === undefined) throw new UsageError(`--${name} needs a value${placeholder(o)}`);
    values.set(name, convert(o, raw));
  }
  const maxPositionals = spec.positionals?.length ?? 0;
  if (positionals.length > maxPositionals) {
    throw new UsageError(maxPositionals ? `expects ${spec.positionals!.map((p) => p.name).join(' ')}, got ${positionals.length} arguments` : `unexpected argument '${positionals[0]}' (options start with --; see slimgrad ${spec.name} --help)`);
  }
  for (const o of spec.options) {
    if (values.has(o.name)) continue;
    if (o.required) throw new UsageError(`--${o.name}${placeholder(o)} is required: ${o.help}`);
    if (o.default !== undefined) values.set(o.name, o.default);
  }
  return new ParsedOptions(spec, values, given, positionals);
}

/** Whether the arguments ask for help (-h / --help anywhere). */
export function wantsHelp(args: string[]): boolean {
  return args.some((a) => HELP_FLAGS.includes(a));
}

/**
 * A command from its table and a handler of the parsed options: `--help` prints the generated help
 * (exit 0), anything else is parsed and validated before the handler runs.
 */
export function defineCommand(spec: CommandSpec, handler: (o: ParsedOptions) => Promise<number>): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    spec,
    async run(args) {
      if (wantsHelp(args)) {
        console.log(formatHelp(spec));
        return 0;
      }
      return handler(parseOptions(spec, args));
    },
  };
}

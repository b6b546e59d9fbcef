/**
 * `npm run fuzz [-- --runs N] [--seed S] [--format NAME] [--json]`: the loader fuzz harness at
 * scale. Each format runs in its own Node process (so that a crash or an out-of-memory abort is
 * an outcome, not the end of the run) under a timeout (a hang is an outcome too); the table gives
 * the count of each outcome per format, the slowest case, and the child's peak RSS. Exits 1 if any
 * case failed (wrong-error, silent-change, slow, crash, hang).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { FAILURES, OUTCOMES, planArbitrary, runCase, type CaseResult } from './harness.js';

interface Report {
  format: string;
  cases: number;
  counts: Record<string, number>;
  byMutation: Record<string, Record<string, number>>;
  examples: string[];
  maxMs: number;
  seconds: number;
  peakRssMiB: number;
}

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    format: { type: 'string' },
    json: { type: 'boolean', default: false },
    child: { type: 'boolean', default: false },
    'timeout-s': { type: 'string', default: '600' },
  },
});
const runs = Number(values.runs);
const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 2 ** 31;

async function child(name: string): Promise<void> {
  const { FORMATS } = await import('./formats.js');
  const format = FORMATS.find((f) => f.name === name);
  if (!format) throw new Error(`unknown format ${name}`);
  const counts: Record<string, number> = Object.fromEntries(OUTCOMES.map((o) => [o, 0]));
  const byMutation: Record<string, Record<string, number>> = {};
  const examples: string[] = [];
  let maxMs = 0;
  const t0 = performance.now();
  fc.check(
    fc.property(format.valid, planArbitrary(format), (value, plan) => {
      let r: CaseResult;
      try {
        r = runCase(format, value, plan);
      } catch (e) {
        // An exception from the harness itself (a writer, the reference): counted, never hidden.
        r = { outcome: 'wrong-error', mutation: 'harness', ms: 0, detail: String((e as Error).stack) };
      }
      counts[r.outcome]!++;
      (byMutation[r.mutation] ??= {})[r.outcome] = (byMutation[r.mutation]![r.outcome] ?? 0) + 1;
      maxMs = Math.max(maxMs, r.ms);
      if (FAILURES.has(r.outcome) && examples.length < 5) examples.push(`${r.outcome} after ${r.mutation}: ${r.detail} | value ${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? String(v) : v))?.slice(0, 300)} | plan ${JSON.stringify(plan, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
      return true;
    }),
    { numRuns: runs, seed },
  );
  const report: Report = { format: name, cases: runs, counts, byMutation, examples, maxMs, seconds: (performance.now() - t0) / 1000, peakRssMiB: process.resourceUsage().maxRSS / 1024 };
  console.log(JSON.stringify(report));
}

async function main(): Promise<number> {
  const { FORMATS } = await import('./formats.js');
  const names = values.format ? [values.format] : FORMATS.map((f) => f.name);
  const self = fileURLToPath(import.meta.url);
  const reports: (Report & { crash?: string })[] = [];
  console.log(`fuzz: ${runs} cases per format, seed ${seed} (rerun with --seed ${seed})`);
  for (const name of names) {
    const r = spawnSync(process.execPath, [...process.execArgv, self, '--child', '--format', name, '--runs', String(runs), '--seed', String(seed)], {
      encoding: 'utf8',
      timeout: Number(values['timeout-s']) * 1000,
      maxBuffer: 64 << 20,
    });
    const line = r.stdout?.trim().split('\n').pop() ?? '';
    if (r.status === 0 && line.startsWith('{')) reports.push(JSON.parse(line));
    else {
      const why = r.error?.message.includes('ETIMEDOUT') ? 'hang' : 'crash';
      reports.push({ format: name, cases: runs, counts: {}, byMutation: {}, examples: [], maxMs: NaN, seconds: NaN, peakRssMiB: NaN, crash: `${why}: status ${r.status} ${r.signal ?? ''} ${r.stderr?.slice(-1500)}` });
    }
  }
  const header = ['format', 'cases', ...OUTCOMES, 'crash/hang', 'slowest CPU ms', 'wall s', 'peak RSS MiB'];
  const rows = reports.map((r) => [r.format, r.cases, ...OUTCOMES.map((o) => r.counts[o] ?? 0), r.crash ? 1 : 0, r.maxMs.toFixed(1), r.seconds.toFixed(1), r.peakRssMiB.toFixed(0)].map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padStart(widths[i]!)).join(' | ') + ' |';
  console.log(line(header));
  console.log('|' + widths.map((w) => '-'.repeat(w + 1) + ':').join('|') + '|');
  for (const r of rows) console.log(line(r));
  let failed = 0;
  for (const r of reports) {
    const bad = OUTCOMES.filter((o) => FAILURES.has(o)).reduce((n, o) => n + (r.counts[o] ?? 0), 0) + (r.crash ? 1 : 0);
    failed += bad;
    if (r.crash) console.log(`\n${r.format}: ${r.crash}`);
    for (const e of r.examples) console.log(`\n${r.format}: ${e}`);
  }
  if (values.json) console.log(JSON.stringify({ suite: 'fuzz', seed, runs, reports }));
  console.log(failed ? `\nFAILED: ${failed} failing cases` : '\nno crashes, hangs, engine errors, silent changes or slow cases');
  return failed ? 1 : 0;
}

if (values.child) await child(values.format!);
else process.exitCode = await main();

/**
 * `slimgrad bench browser [--json] [--seconds S] [--rounds R] [--threads 1,2] [--models lenet,mlp] [--no-tfjs]`:
 * training samples/s of LeNet-5 and the MLP in headless Chromium (the browser entry in a module
 * Web Worker of a cross-origin-isolated page, threads as Web Workers) against the same steps in
 * Node (this process) and TensorFlow.js cpu and wasm in the same page. Each case times SGD steps
 * on one fixed random batch of 64 (bench/engine-train.ts, as `bench engine` does) for S seconds
 * after a warm-up step; slimgrad's Node and page cases alternate R times per thread count (each
 * row keeps its best round) so that load on a shared machine hits both alike. Ratios: page / Node at the same threads, page / tfjs-cpu
 * (page at its best thread count), 2 threads / 1 in the page and in Node.
 * JSON (last line): { suite: 'browser', chromium, train: [{ model, engine, threads, samplesPerSec, error }], ratios: [...] }.
 */
import { existsSync, mkdtempSync, copyFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { printJson, printTable, UsageError } from '../src/cli/command.js';
import { setThreads, useFastestBackend } from '../src/backends/index.js';
import { buildBrowser, CHROMIUM, launchChromium, serve } from '../scripts/browser.mjs';
import { slimgradStep, timeSteps, TRAIN_SPECS, type TrainModel } from './engine-train.js';
import type { BrowserCase } from './browser-worker.js';

const MODELS = ['lenet', 'mlp'] as const;

export interface BrowserTrainRow {
  model: TrainModel;
  engine: 'slimgrad-browser' | 'slimgrad-node' | 'tfjs-cpu' | 'tfjs-wasm';
  threads: number;
  samplesPerSec: number | null;
  error: string | null;
}

export interface BrowserRatio {
  model: TrainModel;
  /** e.g. 'slimgrad-browser / slimgrad-node'. */
  ratio: string;
  threads: number | null;
  value: number | null;
}

/** The ratios the targets are stated in, from one run's rows. */
export function browserRatios(rows: BrowserTrainRow[]): BrowserRatio[] {
  const out: BrowserRatio[] = [];
  const sps = (model: TrainModel, engine: BrowserTrainRow['engine'], threads?: number) =>
    rows.find((r) => r.model === model && r.engine === engine && (threads === undefined || r.threads === threads))?.samplesPerSec ?? null;
  const over = (a: number | null, b: number | null) => (a && b ? a / b : null);
  for (const model of [...new Set(rows.map((r) => r.model))]) {
    const page = rows.filter((r) => r.model === model && r.engine === 'slimgrad-browser' && r.samplesPerSec !== null);
    for (const r of page) out.push({ model, ratio: 'slimgrad-browser / slimgrad-node', threads: r.threads, value: over(r.samplesPerSec, sps(model, 'slimgrad-node', r.threads)) });
    const best = page.length ? Math.max(...page.map((r) => r.samplesPerSec!)) : null;
    for (const peer of ['tfjs-cpu', 'tfjs-wasm'] as const) {
      if (rows.some((r) => r.model === model && r.engine === peer)) out.push({ model, ratio: `slimgrad-browser (best) / ${peer}`, threads: null, value: over(best, sps(model, peer)) });
    }
    for (const engine of ['slimgrad-browser', 'slimgrad-node'] as const) {
      const two = sps(model, engine, 2), one = sps(model, engine, 1);
      if (two !== null || one !== null) out.push({ model, ratio: `${engine} 2 threads / 1`, threads: null, value: over(two, one) });
    }
  }
  return out;
}

/** The tfjs wasm backend's binaries, copied next to the bench bundle (its default location). */
function copyTfjsWasm(outdir: string): void {
  const dist = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) copyFileSync(join(dist, f), join(outdir, f));
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      seconds: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      threads: { type: 'string', default: '1,2' },
      models: { type: 'string', default: MODELS.join(',') },
      'no-tfjs': { type: 'boolean', default: false },
    },
  });
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new UsageError(`bench browser: --seconds must be a positive number, got '${values.seconds}'`);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new UsageError(`bench browser: --rounds must be a positive integer, got '${values.rounds}'`);
  const threadCounts = values.threads.split(',').map(Number);
  if (threadCounts.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`bench browser: --threads must be positive integers, got '${values.threads}'`);
  const models = values.models.split(',') as TrainModel[];
  const unknown = models.filter((m) => !(MODELS as readonly string[]).includes(m));
  if (unknown.length) throw new UsageError(`bench browser: unknown model(s) ${unknown.join(', ')} (available: ${MODELS.join(', ')})`);
  if (!existsSync(CHROMIUM)) throw new UsageError(`bench browser: no Chromium at ${CHROMIUM} (apt-get install chromium, or set SLIMGRAD_CHROMIUM)`);

  const out = mkdtempSync(join(tmpdir(), 'slimgrad-bench-browser-'));
  const server = await serve(out);
  const browser = await launchChromium();
  const rows: BrowserTrainRow[] = [];
  try {
    await buildBrowser({ outdir: out, extraEntries: { 'bench-worker': join(import.meta.dirname, 'browser-worker.ts') } });
    copyTfjsWasm(out);
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    // One worker per engine (tfjs backends keep global state); each case is one message.
    const inPage = (c: BrowserCase, worker: string) =>
      page.evaluate(
        ([c, name]) => {
          const w = ((window as unknown as Record<string, Worker>)[name] ??= new Worker('./bench-worker.js', { type: 'module' }));
          return new Promise<{ samplesPerSec: number | null; threads: number; error: string | null }>((resolve) => {
            w.onmessage = (e) => resolve(e.data);
            w.onerror = (e) => resolve({ samplesPerSec: null, threads: c.threads, error: `worker error: ${e.message}` });
            w.postMessage(c);
          });
        },
        [c, worker] as const,
      );
    useFastestBackend();
    for (const model of models) {
      for (const threads of threadCounts) {
        setThreads(threads);
        // Node and page alternate, `rounds` times; each keeps its best (least disturbed) round.
        const node: BrowserTrainRow = { model, engine: 'slimgrad-node', threads, samplesPerSec: null, error: null };
        const inBrowser: BrowserTrainRow = { model, engine: 'slimgrad-browser', threads, samplesPerSec: null, error: null };
        for (let round = 0; round < rounds; round++) {
          try {
            const sps = TRAIN_SPECS[model].batch / (await timeSteps(slimgradStep(model), seconds));
            node.samplesPerSec = Math.max(node.samplesPerSec ?? 0, sps);
          } catch (e) {
            node.error = (e as Error).message;
          }
          const r = await inPage({ model, engine: 'slimgrad-browser', threads, seconds }, 'slimgrad');
          if (r.samplesPerSec !== null) inBrowser.samplesPerSec = Math.max(inBrowser.samplesPerSec ?? 0, r.samplesPerSec);
          inBrowser.error = r.error ?? (r.threads !== threads ? `${threads} threads requested, ${r.threads} started` : null);
        }
        rows.push(node, inBrowser);
      }
      if (values['no-tfjs']) continue;
      for (const engine of ['tfjs-cpu', 'tfjs-wasm'] as const) {
        const r = await inPage({ model, engine, threads: 1, seconds }, engine);
        rows.push({ model, engine, threads: 1, samplesPerSec: r.samplesPerSec, error: r.error });
      }
    }
  } finally {
    await browser.close();
    server.close();
    rmSync(out, { recursive: true, force: true });
  }
  const chromium = browser.version();
  const ratios = browserRatios(rows);
  console.log(`Chromium ${chromium} (headless), page cross-origin isolated; ${seconds} s per case (slimgrad: best of ${rounds} alternating rounds), batch 64, SGD on a fixed batch`);
  printTable(rows.map((r) => ({ ...r, samplesPerSec: r.samplesPerSec === null ? null : Number(r.samplesPerSec.toFixed(1)) })));
  console.log();
  printTable(ratios.map((r) => ({ ...r, value: r.value === null ? null : Number(r.value.toFixed(2)) })));
  if (values.json) printJson({ suite: 'browser', chromium, seconds, rounds, train: rows, ratios });
  return 0;
}

/**
 * Shared by `slimgrad explain` and `slimgrad bench explain`: flag parsing, the Adult / Bank presets
 * (SHEAR protocol: Adult without fnlwgt, label `class`; Bank label `y`), training or loading the
 * softplus MLP, and the single reference row (test-split mean, as in the SHEAR repository).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readTabularFile } from '../data/tabular-file.js';
import type { TabularDataset, TabularSplit } from '../data/tabular.js';
import { createTabularMlp, mlpAccuracy, trainTabularMlp, type TabularMlp } from '../explain/tabular-mlp.js';
import { loadModule, saveModule } from '../io/checkpoint.js';
import { getBackend, setBackend } from '../backends/index.js';
import { registerWasmBackend } from '../backends/index.js';
import { UsageError } from './command.js';

/** Parsed `--name value` / `--flag` arguments. */
export class Flags {
  private readonly values = new Map<string, string>();
  private readonly used = new Set<string>();

  constructor(args: string[], readonly command: string, booleans: string[]) {
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (!a.startsWith('--')) throw new UsageError(`${command}: unexpected argument '${a}'`);
      const name = a.slice(2);
      if (booleans.includes(name)) { this.values.set(name, 'true'); continue; }
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${command}: --${name} needs a value`);
      this.values.set(name, v);
    }
  }

  string(name: string): string | undefined {
    this.used.add(name);
    return this.values.get(name);
  }

  bool(name: string): boolean {
    return this.string(name) === 'true';
  }

  int(name: string, fallback: number, min = 1): number {
    const v = this.string(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`${this.command}: --${name} must be an integer ≥ ${min}, got '${v}'`);
    return n;
  }

  list(name: string): string[] | undefined {
    return this.string(name)?.split(',').map((s) => s.trim()).filter(Boolean);
  }

  /** Rejects flags nobody asked for (typos). Call after reading every flag. */
  checkUnused(): void {
    for (const k of this.values.keys()) if (!this.used.has(k)) throw new UsageError(`${this.command}: unknown option --${k}`);
  }
}

/** Built-in data sets (files under the data directory). */
export const TABULAR_PRESETS: Record<string, { file: string; label: string; drop: string[] }> = {
  adult: { file: 'adult.csv', label: 'class', drop: ['fnlwgt'] },
  bank: { file: 'bank.csv', label: 'y', drop: [] },
};

/** Default data directory: ../shared/data/tabular relative to the working directory. */
export const DEFAULT_TABULAR_DIR = join('..', 'shared', 'data', 'tabular');

/** Loads a preset name or a CSV path (`label` required for paths; it overrides a preset's). */
export function loadTabularData(command: string, data: string, label?: string, drop?: string[], dataDir = DEFAULT_TABULAR_DIR, categorical?: string[]): TabularDataset {
  const preset = TABULAR_PRESETS[data];
  if (preset) {
    const path = join(dataDir, preset.file);
    if (!existsSync(path)) throw new UsageError(`${command}: ${path} not found (point --data-dir at a folder holding ${preset.file})`);
    return readTabularFile(path, { label: label ?? preset.label, drop: drop ?? preset.drop, categorical });
  }
  if (!label) throw new UsageError(`${command}: --label NAME is required for a CSV file (presets: ${Object.keys(TABULAR_PRESETS).join(', ')})`);
  if (!existsSync(data)) throw new UsageError(`${command}: --data '${data}' is neither a preset (${Object.keys(TABULAR_PRESETS).join(', ')}) nor an existing file`);
  return readTabularFile(data, { label, drop: drop ?? [], categorical });
}

/** A trained (or loaded) model and how it got there. */
export interface PreparedModel {
  mlp: TabularMlp;
  loadedFrom?: string;
  trainSeconds: number;
  finalLoss: number;
  testAccuracy: number;
}

/**
 * Loads the MLP from `modelPath` when that file exists (its column list must match), else trains it
 * (and saves it to `modelPath` when given).
 */
export function prepareModel(dataset: TabularDataset, epochs: number, seed: number, modelPath?: string, log: (line: string) => void = () => {}): PreparedModel {
  const mlp = createTabularMlp(dataset.columns.length, { seed });
  const columns = dataset.columns.join('\u0001');
  if (modelPath && existsSync(modelPath)) {
    const meta = loadModule(mlp.network, modelPath);
    if (meta['columns'] !== columns) throw new UsageError(`${modelPath}: the model was trained on different columns than this data set`);
    mlp.network.eval();
    return { mlp, loadedFrom: modelPath, trainSeconds: 0, finalLoss: NaN, testAccuracy: mlpAccuracy(mlp, dataset.test) };
  }
  const start = performance.now();
  const finalLoss = trainTabularMlp(mlp, dataset.train, { epochs, seed, onEpoch: (e, l) => log(`  epoch ${e + 1}/${epochs}: loss ${l.toFixed(4)}`) });
  const trainSeconds = (performance.now() - start) / 1000;
  if (modelPath) saveModule(mlp.network, modelPath, { columns });
  return { mlp, trainSeconds, finalLoss, testAccuracy: mlpAccuracy(mlp, dataset.test) };
}

/** Column means of a split: the SHEAR reference row (numeric: mean; one-hot block: mean one-hot vector). */
export function meanRow(split: TabularSplit, width: number): Float64Array {
  const r = new Float64Array(width);
  for (let i = 0; i < split.rows; i++) for (let c = 0; c < width; c++) r[c]! += split.x[i * width + c]!;
  for (let c = 0; c < width; c++) r[c]! /= split.rows;
  return r;
}

/**
 * Applies `--backend wasm|reference` when given (the CLI entry has already picked the fastest backend,
 * or SLIMGRAD_BACKEND) and returns the active one.
 */
export function chooseBackend(flags: { string(name: string): string | undefined; command?: string }): string {
  const wanted = flags.string('backend');
  if (wanted === undefined) return getBackend();
  if (wanted === 'wasm' && !registerWasmBackend()) throw new UsageError(`--backend wasm: no kernel build this engine can run (npm run build:kernels)`);
  try {
    setBackend(wanted);
  } catch (e) {
    throw new UsageError(`--backend ${wanted}: ${(e as Error).message}`);
  }
  return getBackend();
}

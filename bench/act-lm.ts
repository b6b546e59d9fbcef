/**
 * `slimgrad bench act --lm`: the Tiny Shakespeare character LM under activation compression
 * (issue 12). Per seed and mode: a causal transformer (`--lm-dim` 128, `--lm-heads` 4,
 * `--lm-layers` 4, `--lm-tokens` 64) trained for `--lm-steps` Adam steps (lr `--lm-lr` with
 * warm-up and cosine decay, batch `--lm-batch`) on the same sequence of training windows
 * for every mode, then its mean validation loss (nats/char) over the first `--lm-val` windows of
 * the validation split, its difference to `off` of the same seed, and the bytes saved for
 * backward on the last training step (ledger) with their ratio to `off`.
 */
import { inBenchChild, mapConcurrent } from './children.js';
import { backward } from '../src/autograd/backward.js';
import { noGrad } from '../src/autograd/mode.js';
import { memory as ledgerMemory } from '../src/core/ledger.js';
import { StepPlan } from '../src/core/plan.js';
import { scope } from '../src/core/scope.js';
import { fromValues } from '../src/core/tensor.js';
import { Compression } from '../src/compress/act.js';
import { parseActSpec } from '../src/compress/policy.js';
import { charExample, charExampleCount, loadCharText } from '../src/data/text.js';
import { transformer } from '../src/nn/models.js';
import { crossEntropy } from '../src/ops/index.js';
import { Adam } from '../src/optim/optimizer.js';
import { applySchedule, cosineLr, warmup } from '../src/optim/schedule.js';
import { Rng } from '../src/util/rng.js';

export interface LmOptions {
  /** Mode specs as `--act` takes them (off first or not: `off` is always run for the deltas). */
  modes: string[];
  seeds: number;
  steps: number;
  batch: number;
  tokens: number;
  dim: number;
  heads: number;
  layers: number;
  lr: number;
  /** Validation windows evaluated (at most the split's). */
  valWindows: number;
  /** auto:B modes: every how many sensitivity estimations (one per 100 steps) one calibrates (`autoCalibrate`). */
  autoCalibrate?: number;
  dataFile: string;
}

export interface LmRow {
  model: 'transformer';
  mode: string;
  seed: number;
  steps: number;
  /** Mean cross-entropy over the validation windows, nats per character. */
  valLoss: number;
  /** valLoss minus the `off` run's of the same seed. */
  deltaVsOff: number;
  /** Bytes saved for backward by the last training step (ledger). */
  savedBytes: number;
  /** off's savedBytes / this mode's. */
  ratio: number;
  /** For auto:B, the allocation's mean bits; else null. */
  allocatedBits: number | null;
  /** Mean training step (forward, backward, Adam step), ms; a shared machine makes it noisy. */
  stepMs: number;
}

export const LM_DEFAULTS: Omit<LmOptions, 'modes'> = {
  seeds: 1, steps: 900, batch: 16, tokens: 64, dim: 128, heads: 4, layers: 4, lr: 4e-3, valWindows: 512,
  dataFile: '../shared/data/text/tinyshakespeare.txt',
};

/** One training run of one mode and seed; the returned row's deltaVsOff and ratio are filled in by `lmRows`. */
function trainLm(mode: string, seed: number, o: Omit<LmOptions, 'modes' | 'seeds'>, text: ReturnType<typeof loadCharText>): Omit<LmRow, 'deltaVsOff' | 'ratio'> {
  const { batch, tokens } = o;
  const model = transformer({ dim: o.dim, heads: o.heads, layers: o.layers, tokens, vocab: text.vocab.length, seed });
  const optimizer = new Adam(model.parameters(), { lr: o.lr });
  const schedule = warmup(cosineLr(o.lr, Math.max(1, o.steps - Math.ceil(o.steps / 20))), Math.ceil(o.steps / 20));
  const act = new Compression({ ...parseActSpec(mode, 'bench act --lm-modes'), model, seed, ...(o.autoCalibrate !== undefined ? { autoCalibrate: o.autoCalibrate } : {}) });
  const plan = new StepPlan();
  // The same windows in the same order for every mode of a seed.
  const order = new Rng(seed, 11);
  const windows = charExampleCount(text.train, tokens);
  const x = new Int32Array(batch * tokens), y = new Int32Array(batch * tokens);
  let savedBytes = 0, totalMs = 0;
  for (let step = 0; step < o.steps; step++) {
    for (let j = 0; j < batch; j++) charExample(text.train, tokens, order.int(windows), x, y, j * tokens);
    applySchedule(schedule, optimizer, step);
    const t0 = performance.now();
    plan.run(() => scope(() => {
      const before = ledgerMemory().current.saved;
      const loss = act.run(() => crossEntropy(model.call(fromValues(x, [batch, tokens], 'int32')), fromValues(y, [batch * tokens], 'int32')));
      savedBytes = ledgerMemory().current.saved - before;
      backward(loss);
      optimizer.step();
      optimizer.zeroGrad();
    }));
    totalMs += performance.now() - t0;
  }
  const valLoss = validationLoss(model, text.validation, tokens, batch, o.valWindows);
  const allocatedBits = act.allocation()?.meanBits ?? null;
  optimizer.dispose();
  model.dispose();
  return { model: 'transformer', mode, seed, steps: o.steps, valLoss, savedBytes, allocatedBits, stepMs: totalMs / Math.max(1, o.steps) };
}

/** Mean loss per character over the first `limit` validation windows, in batches of `batch`. */
function validationLoss(model: ReturnType<typeof transformer>, ids: Int32Array, tokens: number, batch: number, limit: number): number {
  const n = Math.min(limit, charExampleCount(ids, tokens));
  if (n === 0) throw new Error(`bench act --lm: the validation split has no window of ${tokens + 1} characters`);
  let sum = 0;
  for (let start = 0; start < n; start += batch) {
    const b = Math.min(batch, n - start);
    const x = new Int32Array(b * tokens), y = new Int32Array(b * tokens);
    for (let j = 0; j < b; j++) charExample(ids, tokens, start + j, x, y, j * tokens);
    sum += b * noGrad(() => scope(() => crossEntropy(model.call(fromValues(x, [b, tokens], 'int32')), fromValues(y, [b * tokens], 'int32')).item()));
  }
  return sum / n;
}

type Run = Omit<LmRow, 'deltaVsOff' | 'ratio'>;

/** What `--lm-child` runs: one mode and seed, printed as one JSON line. */
export interface LmChildSpec {
  mode: string;
  seed: number;
  options: Omit<LmOptions, 'modes' | 'seeds'>;
}

export function lmChild(spec: LmChildSpec): Run {
  return trainLm(spec.mode, spec.seed, spec.options, loadCharText(spec.options.dataFile));
}

/** Runs `spec` in a fresh process of the bench entry. */
function inLmChild(spec: LmChildSpec): Promise<Run> {
  return inBenchChild<Run>(['act', '--lm-child', JSON.stringify(spec)], `bench act --lm: child for ${spec.mode} seed ${spec.seed}`);
}

/**
 * Every mode (plus `off`) for seeds 1..seeds. With jobs = 1 the runs are in this process, one
 * after another; with jobs > 1 each run is a child process, `jobs` at a time (runs are
 * independent and deterministic, so the rows are the same).
 */
export async function lmRows(o: LmOptions, jobs = 1): Promise<LmRow[]> {
  const { modes: requested, seeds, ...options } = o;
  const modes = ['off', ...requested.filter((m) => m !== 'off')];
  const specs = Array.from({ length: seeds }, (_, s) => modes.map((mode) => ({ mode, seed: s + 1, options }))).flat();
  let runs: Run[];
  if (jobs <= 1) {
    const text = loadCharText(o.dataFile);
    runs = specs.map((s) => trainLm(s.mode, s.seed, options, text));
  } else {
    runs = await mapConcurrent(specs, jobs, inLmChild);
  }
  return runs.filter((r) => requested.includes(r.mode)).map((r) => {
    const off = runs.find((q) => q.mode === 'off' && q.seed === r.seed)!;
    return { ...r, deltaVsOff: r.valLoss - off.valLoss, ratio: off.savedBytes / r.savedBytes };
  });
}

/** Issue 12's LM targets: validation loss of each mode minus off's (worst seed), and off below 2.0. */
export function lmTargets(rows: LmRow[]): { target: string; value: number | null; holds: boolean | null }[] {
  const worst = (mode: string) => {
    const d = rows.filter((r) => r.mode === mode).map((r) => r.deltaVsOff);
    return d.length ? Math.max(...d) : undefined;
  };
  const offLoss = rows.filter((r) => r.mode === 'off').map((r) => r.valLoss);
  const check = (target: string, value: number | undefined, limit: number) => ({ target, value: value ?? null, holds: value === undefined ? null : value <= limit });
  return [
    check('lm off validation loss < 2.0 nats/char', offLoss.length ? Math.max(...offLoss) : undefined, 2.0),
    check('lm mesa val loss - off <= 0.01', worst('mesa'), 0.01),
    check('lm int8 val loss - off <= 0.01', worst('int8'), 0.01),
    check('lm auto:4 val loss - off <= 0.03', worst('auto:4'), 0.03),
    check('lm auto:2 val loss - off <= 0.06', worst('auto:2'), 0.06),
  ];
}

/** `bench act`'s LM flags (spread into its parseArgs options). */
export const LM_FLAGS = {
  lm: { type: 'boolean', default: false },
  'lm-only': { type: 'boolean', default: false },
  'lm-child': { type: 'string' },
  'lm-modes': { type: 'string', default: 'off,int8,mesa,auto:4,auto:2,int4,int2' },
  'lm-steps': { type: 'string' },
  'lm-seeds': { type: 'string' },
  'lm-batch': { type: 'string' },
  'lm-tokens': { type: 'string' },
  'lm-dim': { type: 'string' },
  'lm-heads': { type: 'string' },
  'lm-layers': { type: 'string' },
  'lm-lr': { type: 'string' },
  'lm-val': { type: 'string' },
  'lm-jobs': { type: 'string', default: '1' },
  'lm-data': { type: 'string' },
  'lm-auto-calibrate': { type: 'string' },
} as const;

/** The campaign's options from parsed `LM_FLAGS` values; a bad value names its flag. */
export function lmOptionsFrom(values: Record<string, string | boolean | undefined>): { options: LmOptions; jobs: number } {
  const num = (flag: string, fallback: number, integer = true): number => {
    const v = values[flag];
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
      throw new Error(`bench act: --${flag} must be a positive ${integer ? 'integer' : 'number'}, got '${v}'`);
    }
    return n;
  };
  const modes = String(values['lm-modes']).split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of modes) parseActSpec(m, 'bench act --lm-modes');
  const d = LM_DEFAULTS;
  const options: LmOptions = {
    modes, seeds: num('lm-seeds', d.seeds), steps: num('lm-steps', d.steps), batch: num('lm-batch', d.batch), tokens: num('lm-tokens', d.tokens),
    dim: num('lm-dim', d.dim), heads: num('lm-heads', d.heads), layers: num('lm-layers', d.layers), lr: num('lm-lr', d.lr, false),
    valWindows: num('lm-val', d.valWindows), dataFile: (values['lm-data'] as string | undefined) ?? d.dataFile,
  };
  const calibrate = values['lm-auto-calibrate'];
  if (calibrate !== undefined) {
    const n = Number(calibrate);
    if (!Number.isInteger(n) || n < 0) throw new Error(`bench act: --lm-auto-calibrate must be a non-negative integer, got '${calibrate}'`);
    options.autoCalibrate = n;
  }
  if (options.dim % options.heads !== 0) throw new Error(`bench act: --lm-dim ${options.dim} is not a multiple of --lm-heads ${options.heads}`);
  const text = loadCharText(options.dataFile);
  for (const [split, ids] of [['training', text.train], ['validation', text.validation]] as const) {
    if (charExampleCount(ids, options.tokens) === 0) throw new Error(`bench act: --lm-data ${options.dataFile}: the ${split} split has no window of ${options.tokens + 1} characters (--lm-tokens ${options.tokens})`);
  }
  return { options, jobs: num('lm-jobs', 1) };
}

/**
 * `slimgrad bench qat [--json] [--rounds N] [--steps N] [--presets a,b,...]`: CPU time per
 * training step of quantization-aware LeNet-5 (batch 64 of MNIST-shaped inputs, Adam, each
 * preset's constraints and training loss as `train --quant` uses them) next to float LeNet-5.
 * The models train interleaved in one process (each round runs `steps` steps of every model in
 * turn, after one warm-up round), and the time is the process's CPU time (`process.cpuUsage`, all
 * threads), so the load of a shared machine falls on every model alike. A table; with --json
 * then one object whose rows are `{preset, cpuMsPerStep, vsFloat}` (vsFloat = float's time / the
 * preset's: the samples/s ratio at equal CPU).
 */
import { parseArgs } from 'node:util';
import { backward } from '../src/autograd/backward.js';
import { scope } from '../src/core/scope.js';
import { fromValues } from '../src/core/tensor.js';
import { lenet5 } from '../src/nn/models.js';
import type { Module } from '../src/nn/module.js';
import { crossEntropy } from '../src/ops/index.js';
import { Adam } from '../src/optim/optimizer.js';
import { applyQuantPreset, quantTrainingLoss, withConstraints } from '../src/quant/models.js';
import { Rng } from '../src/util/rng.js';
import { printJson, printTable, UsageError } from '../src/cli/command.js';

/** The LeNet-5 presets of `train --quant` that keep LeNet-5's float twin (bnn and xnor build other networks). */
const PRESETS = ['binary', 'bwn', 'twn', 'w8a8', 'irnet', 'dirnet', 'ttq', 'hq', 'sbnn', 'pternary', 'fda', 'nested', 'smartdeal'];
const BATCH = 64;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' }, rounds: { type: 'string' }, steps: { type: 'string' }, presets: { type: 'string' } } });
  const count = (v: string | undefined, fallback: number, name: string): number => {
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`bench qat: --${name} must be an integer >= 1, got '${v}'`);
    return n;
  };
  const rounds = count(values.rounds, 4, 'rounds'), steps = count(values.steps, 4, 'steps');
  const presets = values.presets ? values.presets.split(',') : PRESETS;
  for (const p of presets) if (!PRESETS.includes(p)) throw new UsageError(`bench qat: unknown preset '${p}' (LeNet-5 presets: ${PRESETS.join(', ')})`);

  const rng = new Rng(1);
  const x = fromValues(Float32Array.from({ length: BATCH * 784 }, () => rng.uniform()), [BATCH, 1, 28, 28]);
  const y = fromValues(Int32Array.from({ length: BATCH }, () => rng.int(10)), [BATCH], 'int32');
  const models = [{ preset: 'float', model: lenet5(10, 1) as Module }, ...presets.map((preset) => ({ preset, model: applyQuantPreset('lenet', preset, 1) as Module }))];
  const trainers = models.map(({ preset, model }) => {
    const optimizer = withConstraints(new Adam(model.parameters(), { lr: 1e-3 }), model, (rounds + 1) * steps);
    const loss = quantTrainingLoss(model) ?? ((m: Module, xb, yb) => crossEntropy(m.call(xb), yb));
    return { preset, cpu: 0, step: () => scope(() => { backward(loss(model, x, y)); optimizer.step(); optimizer.zeroGrad(); }) };
  });
  for (let round = 0; round <= rounds; round++) {
    for (const t of trainers) {
      const start = process.cpuUsage();
      for (let s = 0; s < steps; s++) t.step();
      const d = process.cpuUsage(start);
      if (round > 0) t.cpu += (d.user + d.system) / 1000; // round 0 warms up
    }
  }
  const floatMs = trainers[0]!.cpu / (rounds * steps);
  const rows = trainers.map((t) => ({ preset: t.preset, cpuMsPerStep: t.cpu / (rounds * steps), vsFloat: floatMs / (t.cpu / (rounds * steps)) }));
  printTable(rows.map((r) => ({ preset: r.preset, 'CPU ms/step': r.cpuMsPerStep.toFixed(2), 'vs float': `${r.vsFloat.toFixed(2)}x` })));
  if (values.json) printJson({ suite: 'qat', model: 'lenet', batch: BATCH, rounds, steps, rows });
  return 0;
}

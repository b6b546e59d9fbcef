/**
 * `slimgrad bench act --sensitivity`: how well auto precision predicts the gradient error it
 * causes (issue 12). Per model, one calibration step of `auto:B` measures, for every controlled
 * tensor alone at 2 bits, the squared parameter-gradient error ‖g_t − g‖² it causes (the probe),
 * next to the analytic proxy's prediction for the same tensor (‖∂L/∂y‖²/N times the expected
 * quantization error). Then the gradient error of whole steps on one batch, each against the exact
 * gradient of that batch (mean of `draws` noise draws): uniform int2 and int4, auto:B allocated
 * from the proxy alone (`autoCalibrate: 0`) and from the calibration, with the allocation's
 * predicted Σ_t V_t(b_t).
 */
import { backward } from '../src/autograd/backward.js';
import { scope } from '../src/core/scope.js';
import { fromValues } from '../src/core/tensor.js';
import { Compression } from '../src/compress/act.js';
import { costsOf, predictedVariance, proxyKappa } from '../src/compress/auto.js';
import type { ActConfig } from '../src/compress/policy.js';
import { charExample, charExampleCount, loadCharText } from '../src/data/text.js';
import { resnet20, transformer } from '../src/nn/models.js';
import type { Module } from '../src/nn/module.js';
import { crossEntropy } from '../src/ops/index.js';
import type { Tensor } from '../src/core/tensor.js';
import { Adam } from '../src/optim/optimizer.js';
import { Rng } from '../src/util/rng.js';

export interface SensitivityRow {
  model: string;
  tensor: string;
  consumers: string;
  numel: number;
  /** The analytic proxy's predicted ‖Δg‖² for this tensor alone at 2 bits. */
  proxy: number;
  /** Measured ‖Δg‖² with this tensor alone at 2 bits. */
  measured: number;
  /** Bits given by auto:B from the proxy alone / from the calibration. */
  proxyBits: number;
  calibratedBits: number;
}

export interface AllocationErrorRow {
  model: string;
  mode: string;
  /** Element-weighted mean bits of the controlled tensors (auto), or the uniform width. */
  allocBits: number;
  /** Predicted Σ_t V_t(b_t) (calibrated auto only), and the measured mean ‖Δg‖² and its relative L2 error. */
  predicted: number | null;
  measured: number;
  relError: number;
}

interface Subject {
  name: string;
  model: Module;
  forward: () => Tensor;
}

/**
 * The subjects at their initialisation, or after `pretrain` fp32 Adam steps (lr 0.004 ResNet-20 on
 * its fixed batch, the LM on random training windows) so that the sensitivities are those of a
 * network in training.
 */
function subjects(which: string[], dataFile: string, pretrain: number): Subject[] {
  const out: Subject[] = [];
  if (which.includes('resnet20')) {
    const model = resnet20();
    const r = new Rng(7, 32);
    const x = Float32Array.from({ length: 32 * 3 * 32 * 32 }, () => r.normal()), y = Int32Array.from({ length: 32 }, () => r.int(10));
    const forward = () => crossEntropy(model.call(fromValues(x, [32, 3, 32, 32])), fromValues(y, [32], 'int32'));
    train(model, forward, pretrain, () => {});
    out.push({ name: 'resnet20', model, forward });
  }
  if (which.includes('charlm')) {
    const text = loadCharText(dataFile);
    const model = transformer({ dim: 128, heads: 4, layers: 4, tokens: 64, vocab: text.vocab.length, seed: 1 });
    const batch = 16, tokens = 64, r = new Rng(1, 11);
    const x = new Int32Array(batch * tokens), y = new Int32Array(batch * tokens);
    const windows = () => {
      for (let j = 0; j < batch; j++) charExample(text.train, tokens, r.int(charExampleCount(text.train, tokens)), x, y, j * tokens);
    };
    const forward = () => crossEntropy(model.call(fromValues(x, [batch, tokens], 'int32')), fromValues(y, [batch * tokens], 'int32'));
    train(model, forward, pretrain, windows);
    windows();
    out.push({ name: 'charlm', model, forward });
  }
  return out;
}

function train(model: Module, forward: () => Tensor, steps: number, next: () => void): void {
  const opt = new Adam(model.parameters(), { lr: 0.004 });
  for (let s = 0; s < steps; s++) {
    next();
    scope(() => backward(forward()));
    opt.step();
    opt.zeroGrad();
  }
  opt.dispose();
}

function step(s: Subject, act: Compression): Float32Array[] {
  scope(() => backward(act.run(s.forward)));
  const g = s.model.parameters().map((p) => (p.grad ? (p.grad.values() as Float32Array) : new Float32Array(p.size)));
  s.model.zeroGrad();
  return g;
}

function sqDiff(a: Float32Array[], b: Float32Array[]): number {
  let e = 0;
  a.forEach((v, i) => v.forEach((x, j) => (e += (x - b[i]![j]!) ** 2)));
  return e;
}

export function sensitivityRows(which: string[], autoBits: number, draws: number, dataFile: string, pretrain = 0): { tensors: SensitivityRow[]; errors: AllocationErrorRow[] } {
  const tensors: SensitivityRow[] = [], errors: AllocationErrorRow[] = [];
  for (const s of subjects(which, dataFile, pretrain)) {
    const exact = step(s, new Compression({ mode: 'off', model: s.model }));
    const norm = exact.reduce((a, v) => a + v.reduce((b, x) => b + x * x, 0), 0);
    const sessions = (config: Omit<ActConfig, 'model'>) => new Compression({ ...config, model: s.model, seed: 1, autoInterval: 1_000_000 });
    const calibrated = sessions({ mode: 'auto', autoBits, autoCalibrate: 1 });
    const proxy = sessions({ mode: 'auto', autoBits, autoCalibrate: 0 });
    step(s, calibrated);
    step(s, proxy);
    // The allocation is made at the start of the next run: one more step each (its error is a draw too).
    const measure = (mode: string, act: Compression) => {
      let e = 0;
      for (let d = 0; d < draws; d++) e += sqDiff(step(s, act), exact);
      e /= draws;
      const a = act.auto;
      const predicted = a && act === calibrated ? predictedVariance([...a.saves.values()].map((t) => ({ sensitivity: 0, numel: t.numel, costs: costsOf(t) })), [...a.saves.values()].map((t) => t.bits)) : null;
      errors.push({ model: s.name, mode, allocBits: a ? a.meanBits() : Number(mode.slice(3)), predicted, measured: e, relError: Math.sqrt(e / norm) });
    };
    measure(`auto:${autoBits} (calibrated)`, calibrated);
    measure(`auto:${autoBits} (proxy only)`, proxy);
    for (const m of ['int2', 'int4'] as const) measure(m, sessions({ mode: m }));
    const proxyBits = new Map([...proxy.auto!.saves.values()].map((t) => [t.key, t.bits]));
    for (const t of calibrated.auto!.saves.values()) {
      tensors.push({
        model: s.name, tensor: `${t.module}.${t.op}:${t.name}`, consumers: t.consumers.join('+'), numel: t.numel,
        proxy: proxyKappa(t) * t.noise[1]!, measured: t.probeError ?? NaN, proxyBits: proxyBits.get(t.key) ?? NaN, calibratedBits: t.bits,
      });
    }
    s.model.dispose();
  }
  return { tensors, errors };
}

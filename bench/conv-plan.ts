/**
 * The measurements behind conv2d's per-shape algorithm choice (convPlan, src/ops/conv.ts): for each
 * conv layer of ResNet-20, the engine CNN and LeNet-5 (batch 64) and a few extra shapes (1x1,
 * large maps), one training step of the layer alone (forward, data and weight gradients) with one
 * direction switched between 'implicit' (convGemm) and 'im2col' (columns written out; col2im for the
 * data gradient), the others left at convPlan's choice. The two algorithms alternate within each
 * timing round; the round with the least CPU time counts (CPU time, not wall: on a shared machine
 * it filters out the time other processes take), and its wall time is printed next to it.
 *
 *   node --import tsx bench/conv-plan.ts [--threads N] [--ms MS] [--json]
 *
 * Prints one row per shape and direction: CPU (and wall) ms per step with each algorithm, their CPU ratio and convPlan's choice.
 */
import { parseArgs } from 'node:util';
import { grad } from '../src/autograd/backward.js';
import { setThreads, useFastestBackend } from '../src/backends/index.js';
import { scope } from '../src/core/scope.js';
import { fromValues } from '../src/core/tensor.js';
import { conv2d, convGeometry, convPlan, overrideConvPlan, type ConvAlgorithm, type ConvPlan, type Conv2dOptions } from '../src/ops/conv.js';
import { mul, sum } from '../src/ops/index.js';
import { Rng } from '../src/util/rng.js';

interface Shape {
  label: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  o: Conv2dOptions;
}

const N = 64;
const SHAPES: Shape[] = [
  { label: 'resnet20 stem 3->16 32x32', x: [N, 3, 32, 32], w: [16, 3, 3, 3], o: { padding: 1 } },
  { label: 'resnet20 16->16 32x32', x: [N, 16, 32, 32], w: [16, 16, 3, 3], o: { padding: 1 } },
  { label: 'resnet20 16->32 s2 32x32', x: [N, 16, 32, 32], w: [32, 16, 3, 3], o: { padding: 1, stride: 2 } },
  { label: 'resnet20 1x1 16->32 s2', x: [N, 16, 32, 32], w: [32, 16, 1, 1], o: { stride: 2 } },
  { label: 'resnet20 32->32 16x16', x: [N, 32, 16, 16], w: [32, 32, 3, 3], o: { padding: 1 } },
  { label: 'resnet20 32->64 s2 16x16', x: [N, 32, 16, 16], w: [64, 32, 3, 3], o: { padding: 1, stride: 2 } },
  { label: 'resnet20 1x1 32->64 s2', x: [N, 32, 16, 16], w: [64, 32, 1, 1], o: { stride: 2 } },
  { label: 'resnet20 64->64 8x8', x: [N, 64, 8, 8], w: [64, 64, 3, 3], o: { padding: 1 } },
  { label: 'cnn 1->32 28x28 valid', x: [N, 1, 28, 28], w: [32, 1, 3, 3], o: {} },
  { label: 'cnn 32->64 13x13 valid', x: [N, 32, 13, 13], w: [64, 32, 3, 3], o: {} },
  { label: 'lenet 1->6 5x5 28x28', x: [N, 1, 28, 28], w: [6, 1, 5, 5], o: { padding: 2 } },
  { label: 'lenet 6->16 5x5 14x14', x: [N, 6, 14, 14], w: [16, 6, 5, 5], o: {} },
  { label: '1x1 64->64 8x8', x: [N, 64, 8, 8], w: [64, 64, 1, 1], o: {} },
  { label: '1x1 16->16 32x32', x: [N, 16, 32, 32], w: [16, 16, 1, 1], o: {} },
  { label: 'large 3->16 96x96', x: [16, 3, 96, 96], w: [16, 3, 3, 3], o: { padding: 1 } },
  { label: 'large 16->16 64x64', x: [16, 16, 64, 64], w: [16, 16, 3, 3], o: { padding: 1 } },
];
const DIRECTIONS: (keyof ConvPlan)[] = ['forward', 'weight', 'input'];
const ALGORITHMS: ConvAlgorithm[] = ['implicit', 'im2col'];

const { values } = parseArgs({ options: { threads: { type: 'string', default: '1' }, ms: { type: 'string', default: '150' }, json: { type: 'boolean', default: false } } });
const ROUNDS = 5;
await useFastestBackend();
setThreads(Number(values.threads));
const ms = Number(values.ms);

const random = (shape: number[], seed: number) => {
  const rng = new Rng(seed, 1), n = shape.reduce((a, b) => a * b, 1);
  return fromValues(Float32Array.from({ length: n }, () => rng.normal()), shape);
};

/** ms per training step of the layer alone, for each algorithm of `direction` (interleaved rounds, best round each). */
function measure(s: Shape, direction: keyof ConvPlan): Record<ConvAlgorithm, { wall: number; cpu: number }> {
  const x = random(s.x, 1), w = random(s.w, 2);
  x.requiresGrad = true;
  w.requiresGrad = true;
  const step = () => scope(() => {
    const y = conv2d(x, w, null, s.o);
    for (const g of grad(sum(mul(y, y)), [x, w])) g?.dispose(); // grad's results outlive the scope
  });
  const best = { implicit: { wall: Infinity, cpu: Infinity }, im2col: { wall: Infinity, cpu: Infinity } };
  for (let r = 0; r < ROUNDS; r++) {
    for (const a of ALGORITHMS) {
      overrideConvPlan({ [direction]: a });
      step();
      let reps = 0;
      const t0 = performance.now(), c0 = process.cpuUsage();
      while (reps < 2 || performance.now() - t0 < ms) {
        step();
        reps++;
      }
      const wall = (performance.now() - t0) / reps, c = process.cpuUsage(c0), cpu = (c.user + c.system) / 1000 / reps;
      if (cpu < best[a].cpu) best[a] = { wall, cpu };
    }
  }
  overrideConvPlan(null);
  x.dispose();
  w.dispose();
  return best;
}

const rows: Record<string, unknown>[] = [];
for (const s of SHAPES) {
  const g = convGeometry('conv2d', s.x, s.w[2], s.w[3], s.o);
  for (const d of DIRECTIONS) {
    overrideConvPlan({ input: 'implicit' });
    const flipFits = convPlan(g).input === 'implicit';
    overrideConvPlan(null);
    if (d === 'input' && !flipFits) continue; // only col2im exists there
    const t = measure(s, d);
    const row = { shape: s.label, direction: d, threads: Number(values.threads), implicitCpuMs: t.implicit.cpu, im2colCpuMs: t.im2col.cpu, implicitWallMs: t.implicit.wall, im2colWallMs: t.im2col.wall, speedup: t.im2col.cpu / t.implicit.cpu, chosen: convPlan(g)[d] };
    rows.push(row);
    if (!values.json) console.log(`${s.label.padEnd(28)} ${d.padEnd(8)} implicit ${t.implicit.cpu.toFixed(2).padStart(7)} ms cpu (${t.implicit.wall.toFixed(2)} wall)  im2col ${t.im2col.cpu.toFixed(2).padStart(7)} ms cpu (${t.im2col.wall.toFixed(2)} wall)  im2col/implicit ${row.speedup.toFixed(2)}  chosen ${row.chosen}`);
  }
}
if (values.json) console.log(JSON.stringify({ rows }));
process.exit(0);

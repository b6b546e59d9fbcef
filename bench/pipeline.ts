/**
 * `slimgrad bench pipeline [--json]`: pipeline-parallel training with compressed activations.
 *
 * throughput rows: one stage process per stage (TCP), each model x stages x codec x link:
 *   - links: 'unshaped' and tbf-shaped 1gbit/500mbit/300mbit/100mbit, each stage in its own
 *     network namespace, neighbours joined by veth pairs shaped on both ends (needs root /
 *     CAP_NET_ADMIN). Without it the rows run in one process over the in-process link simulator
 *     ('sim:100mbit', ...) and a line says so.
 *   - codecs: fp32; fixpoint4 (direct 4-bit forward, 8-bit backward); delta4 (AC-SGD: 4-bit
 *     activation deltas against per-example caches after a first fp32 epoch, 8-bit backward).
 *   - samplesPerSec = batch / median step time (the machine is shared: the median resists load
 *     bursts; meanSamplesPerSec = all steps over the training time); wireBytesPerStep = payload +
 *     framing sent by all stages per step (lastWireBytesPerStep: mean of the last 4 steps, after the
 *     delta codec's fp32 warm-up epoch); lossAfterSteps = mean macro-batch loss of the last 4 steps.
 * quality rows: the char LM trained longer in one process (links do not change the numbers):
 *   fp32 / fixpoint4 / delta4 over 2 stages, and 2 data-parallel replicas with fp32, 8-bit and
 *   4-bit gradient all-reduce with error feedback.
 *
 * Models: charlm = causal transformer on Tiny Shakespeare (d 64, 2 blocks, 4 heads, 64 tokens,
 * first 64 windows); resnet20 = ResNet-20 on synthetic 3x32x32 shapes; wide = a link-bound probe
 * (linear 32->2048, three activations, linear 2048->4, random-teacher data): on a CPU the real
 * models compute for far longer than even a 100 Mbit link takes, the probe shows the opposite regime.
 *
 * Options: --json, --quick (charlm, 2 stages, unshaped + 100mbit), --models, --stages 2,4,
 * --codecs fp32,fixpoint4,delta4, --links unshaped,1gbit,500mbit,300mbit,100mbit,
 * --transport tcp|zmq, --quality-steps N (0 = skip the quality rows).
 */
import { parseArgs } from 'node:util';
import { aggregate, launchStages, type StageSummary } from '../src/cli/commands/pipeline.js';
import { printJson, printTable, UsageError } from '../src/cli/command.js';
import { useFastestBackend } from '../src/backends/wasm/index.js';
import { parseCodec } from '../src/distributed/codec.js';
import { runInProcess } from '../src/distributed/pipeline.js';
import { disposeStage, type StageResult } from '../src/distributed/stage.js';
import { createTask, partition, type TaskOptions } from '../src/distributed/tasks.js';
import { NetnsChain, netnsUnavailable } from '../src/distributed/netns.js';

const LINKS: Record<string, number> = { unshaped: 0, '1gbit': 1e9, '500mbit': 500e6, '300mbit': 300e6, '100mbit': 100e6 };
const CODECS: Record<string, [string, string]> = { fp32: ['fp32', 'fp32'], fixpoint4: ['fixpoint:4', 'fixpoint:8'], delta4: ['delta:4', 'fixpoint:8'] };

interface ModelSetup {
  task: TaskOptions;
  batch: number;
  micro: number;
  steps: number;
  lr: number;
}

const MODELS: Record<string, ModelSetup> = {
  // 64 examples at batch 16: 4 steps per epoch, 12 steps = 1 warm-up epoch + 2 delta epochs.
  charlm: { task: { model: 'charlm', dim: 64, layers: 2, heads: 4, tokens: 64, examples: 64 }, batch: 16, micro: 4, steps: 12, lr: 0.1 },
  resnet20: { task: { model: 'resnet20', examples: 16 }, batch: 8, micro: 2, steps: 6, lr: 0.05 },
  // Link-bound probe: 2048 values per example cross every boundary for very little compute.
  wide: { task: { model: 'wide', examples: 64 }, batch: 32, micro: 4, steps: 12, lr: 0.05 },
};

function taskArgs(t: TaskOptions): string[] {
  const out = ['--model', t.model];
  for (const k of ['dim', 'layers', 'heads', 'tokens', 'examples'] as const) if (t[k] !== undefined) out.push(`--${k}`, String(t[k]));
  return out;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const lastLoss = (losses: number[]) => mean(losses.slice(-4));

function inProcessRow(results: StageResult[], batch: number, replicas: number) {
  const summaries = results.map((r, rank) => ({
    rank, stage: r.stage, replica: r.replica, firstStep: r.firstStep, steps: r.steps, losses: r.losses, seconds: r.trainSeconds, trainSeconds: r.trainSeconds, payloadBytes: 0, sentPerStep: r.sentPerStep, stepSeconds: r.stepSeconds,
    sentBytes: { prev: r.sent.prev.payloadBytes + r.sent.prev.framingBytes, next: r.sent.next.payloadBytes + r.sent.next.framingBytes, ring: r.sent.ring.payloadBytes + r.sent.ring.framingBytes },
  }) satisfies StageSummary);
  results.forEach(disposeStage);
  return aggregate(summaries, batch, replicas, Math.max(...results.map((r) => r.stage)) + 1);
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      models: { type: 'string' },
      stages: { type: 'string' },
      codecs: { type: 'string' },
      links: { type: 'string' },
      transport: { type: 'string', default: 'tcp' },
      'quality-steps': { type: 'string' },
    },
  });
  useFastestBackend();
  const list = (v: string | undefined, fallback: string[], known: string[], flag: string) => {
    const xs = v ? v.split(',') : fallback;
    for (const x of xs) if (!known.includes(x)) throw new UsageError(`--${flag}: unknown '${x}' (available: ${known.join(', ')})`);
    return xs;
  };
  const quick = values.quick!;
  const models = list(values.models, quick ? ['charlm'] : Object.keys(MODELS), Object.keys(MODELS), 'models');
  const stagesList = list(values.stages, quick ? ['2'] : ['2', '4'], ['2', '3', '4'], 'stages').map(Number);
  const codecs = list(values.codecs, Object.keys(CODECS), Object.keys(CODECS), 'codecs');
  const links = list(values.links, quick ? ['unshaped', '100mbit'] : Object.keys(LINKS), Object.keys(LINKS), 'links');
  const transport = values.transport!;
  if (transport !== 'tcp' && transport !== 'zmq') throw new UsageError(`--transport must be tcp or zmq, got '${transport}'`);
  const qualitySteps = Number(values['quality-steps'] ?? (quick ? 0 : 120));
  if (!Number.isInteger(qualitySteps) || qualitySteps < 0) throw new UsageError(`--quality-steps must be an integer >= 0, got '${values['quality-steps']}'`);
  const log = (s: string) => (values.json ? process.stderr.write(s + '\n') : console.log(s));

  const why = netnsUnavailable();
  if (why) log(`pipeline bench: network namespaces / tc tbf unavailable (${why}); links run in one process over the link simulator (sim:...)`);
  const rows: Record<string, unknown>[] = [];
  for (const model of models) {
    const m = MODELS[model]!;
    for (const stages of stagesList) {
      const chain = why ? null : new NetnsChain(stages);
      try {
        for (const link of links) {
          chain?.shape(LINKS[link]!);
          for (const codec of codecs) {
            const [fwd, bwd] = CODECS[codec]!;
            let out: ReturnType<typeof aggregate>;
            if (chain) {
              const stageArgs = [...taskArgs(m.task), '--stages', String(stages), '--steps', String(m.steps), '--batch', String(m.batch), '--micro', String(m.micro),
                '--lr', String(m.lr), '--momentum', '0.9', '--forward', fwd, '--backward', bwd, '--transport', transport];
              const summaries = await launchStages({ args: stageArgs, peers: chain.peers(7100), stages, replicas: 1, wrap: (r) => chain.wrap(r) });
              out = aggregate(summaries, m.batch, 1, stages);
            } else {
              const task = createTask(m.task);
              const results = await runInProcess({
                task, ranges: partition(task.layers(), stages), batch: m.batch, micro: m.micro, steps: m.steps, sgd: { lr: m.lr, momentum: 0.9 },
                forward: parseCodec(fwd, 'codec'), backward: parseCodec(bwd, 'codec'),
              }, { bitsPerSecond: LINKS[link]! || undefined });
              out = inProcessRow(results, m.batch, 1);
            }
            const row = { model, stages, codec, link: chain ? link : `sim:${link}`, samplesPerSec: out.medianSamplesPerSec, meanSamplesPerSec: out.samplesPerSec, wireBytesPerStep: Math.round(out.wireBytesPerStep), lastWireBytesPerStep: Math.round(out.lastWireBytesPerStep), lossAfterSteps: lastLoss(out.losses), steps: out.steps };
            rows.push(row);
            log(`${model} ${stages} stages ${codec} ${row.link}: ${row.samplesPerSec.toFixed(2)} samples/s, ${(row.wireBytesPerStep / 1024).toFixed(0)} KiB/step, loss ${row.lossAfterSteps.toFixed(4)}`);
          }
        }
      } finally {
        chain?.close();
      }
    }
  }

  // Quality: longer char-LM runs in one process (the numbers do not depend on the link).
  const quality: Record<string, unknown>[] = [];
  if (qualitySteps > 0) {
    const q = { task: { model: 'charlm', dim: 64, layers: 2, heads: 4, tokens: 64, examples: 256 } as TaskOptions, batch: 16, micro: 4, lr: 0.1 };
    const task = createTask(q.task);
    const base = { task, batch: q.batch, micro: q.micro, steps: qualitySteps, sgd: { lr: q.lr, momentum: 0.9 } };
    const configs: { name: string; stages: number; replicas: number; fwd: string; bwd: string; dpBits: number; batch: number }[] = [
      ...Object.entries(CODECS).map(([name, [fwd, bwd]]) => ({ name, stages: 2, replicas: 1, fwd, bwd, dpBits: 0, batch: q.batch })),
      ...[0, 8, 4].map((dpBits) => ({ name: `dp ${dpBits ? `${dpBits}-bit` : 'fp32'} gradients`, stages: 1, replicas: 2, fwd: 'fp32', bwd: 'fp32', dpBits, batch: q.batch / 2 })),
    ];
    for (const c of configs) {
      const results = await runInProcess({
        ...base, batch: c.batch, micro: c.batch === q.batch ? q.micro : q.micro / 2, ranges: partition(task.layers(), c.stages), replicas: c.replicas, dpBits: c.dpBits,
        forward: parseCodec(c.fwd, 'codec'), backward: parseCodec(c.bwd, 'codec'),
      });
      const out = inProcessRow(results, c.batch, c.replicas);
      const row = { model: 'charlm', stages: c.stages, replicas: c.replicas, codec: c.name, steps: out.steps, lossAfterSteps: lastLoss(out.losses), wireBytesPerStep: Math.round(out.wireBytesPerStep), lastWireBytesPerStep: Math.round(out.lastWireBytesPerStep) };
      quality.push(row);
      log(`quality ${c.name}: loss ${row.lossAfterSteps.toFixed(4)} after ${row.steps} steps, ${(row.wireBytesPerStep / 1024).toFixed(0)} KiB/step`);
    }
  }

  if (values.json) printJson({ suite: 'pipeline', transport, shaped: !why, rows, quality });
  else {
    console.log('');
    printTable(rows, ['model', 'stages', 'codec', 'link', 'samplesPerSec', 'meanSamplesPerSec', 'wireBytesPerStep', 'lastWireBytesPerStep', 'lossAfterSteps', 'steps']);
    if (quality.length) {
      console.log('');
      printTable(quality);
    }
  }
  return 0;
}

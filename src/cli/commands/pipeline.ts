/**
 * `slimgrad pipeline ...`: trains a model split into pipeline stages, one OS process per stage
 * (x data-parallel replicas), all on this machine. `slimgrad stage --rank R --peers ...`: runs one
 * stage, e.g. on another machine; every stage gets the same options and the same peer list.
 *
 *   machine A (10.0.0.1): slimgrad stage --rank 0 --peers 10.0.0.1:7000,10.0.0.2:7000 --model charlm --stages 2
 *   machine B (10.0.0.2): slimgrad stage --rank 1 --peers 10.0.0.1:7000,10.0.0.2:7000 --model charlm --stages 2
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseCodec, type CacheMode } from '../../distributed/codec.js';
import { neighboursOf, rankName, runInProcess, stageLinks, type InProcessConfig } from '../../distributed/pipeline.js';
import { disposeStage, runStage, type StageResult } from '../../distributed/stage.js';
import { createTask, partition, TASK_MODELS, type TaskModel } from '../../distributed/tasks.js';
import { connectMesh, parseAddress, type TransportKind } from '../../distributed/transport.js';
import { printJson, UsageError } from '../command.js';
import { defineCommand, JSON_OPTION, type CommandSpec, type OptionSpec, type ParsedOptions } from '../options.js';

/** Options every stage process gets (the launcher passes them through unchanged). */
const SHARED_OPTIONS: OptionSpec[] = [
  { name: 'model', type: 'choice', choices: TASK_MODELS, default: 'charlm', help: 'task: char LM on Tiny Shakespeare, ResNet-20, an MLP, or the link-bound "wide" probe' },
  { name: 'stages', type: 'int', min: 1, default: 2, help: 'pipeline stages (layer ranges balanced by parameter count unless --boundaries)' },
  { name: 'boundaries', type: 'list', help: 'first layer of each stage after the first, e.g. 2,5' },
  { name: 'replicas', type: 'int', min: 1, default: 1, help: 'data-parallel replicas of the whole pipeline (gradients averaged by ring all-reduce)' },
  { name: 'steps', type: 'int', min: 1, default: 20, help: 'optimizer steps' },
  { name: 'batch', type: 'int', min: 1, default: 16, help: 'examples per step (per replica)' },
  { name: 'micro', type: 'int', min: 1, default: 4, help: 'micro-batches per step (must divide --batch)' },
  { name: 'lr', type: 'number', above: 0, default: 0.1, help: 'SGD learning rate' },
  { name: 'momentum', type: 'number', min: 0, max: 1, belowMax: true, default: 0.9, help: 'SGD momentum' },
  { name: 'forward', type: 'string', default: 'fp32', help: 'activation codec between stages: fp32, fixpoint:B or delta:B (AC-SGD), B in 1..8' },
  { name: 'backward', type: 'string', default: 'fp32', help: 'gradient codec between stages: fp32 or fixpoint:B' },
  { name: 'dp-bits', type: 'int', min: 0, default: 0, help: 'all-reduce gradient bits with error feedback: 0 (fp32), 8 or 4' },
  { name: 'transport', type: 'choice', choices: ['tcp', 'zmq', 'inproc'], default: 'tcp', help: 'links: TCP, ZeroMQ, or in-process (one process, for checks)' },
  { name: 'cache', type: 'choice', choices: ['memory', 'file', 'lowbit'], default: 'memory', help: 'where delta:B keeps its per-example caches' },
  { name: 'cache-dir', type: 'file', default: '.', help: 'folder of the --cache file caches' },
  { name: 'checkpoint-dir', type: 'file', help: 'folder of the per-stage checkpoints' },
  { name: 'checkpoint-every', type: 'int', min: 0, default: 0, help: 'write each stage\'s checkpoint every N steps (0: never)' },
  { name: 'resume', type: 'boolean', default: false, help: 'continue from the checkpoints in --checkpoint-dir' },
  { name: 'seed', type: 'int', min: 0, default: 0, help: 'seed of the weights and the data order' },
  { name: 'examples', type: 'int', min: 1, help: 'training examples to use (default: the task\'s)' },
  { name: 'data', type: 'file', help: 'text file of the char LM (default ../shared/data/text/tinyshakespeare.txt)' },
  { name: 'dim', type: 'int', min: 1, help: 'model width (task default otherwise)' },
  { name: 'layers', type: 'int', min: 1, help: 'blocks of the char LM' },
  { name: 'heads', type: 'int', min: 1, help: 'attention heads of the char LM' },
  { name: 'tokens', type: 'int', min: 1, help: 'context length of the char LM' },
  { name: 'recv-timeout', type: 'number', above: 0, default: 120, help: 'seconds a link may stay silent before the stage gives up' },
  { name: 'fail-after', type: 'int', min: 0, help: 'testing: make the stage stop with an error after N steps' },
  JSON_OPTION,
];

/** The shared options the user gave, as stage command-line arguments (json and the failure hook are the launcher's). */
function stageArgs(o: ParsedOptions): string[] {
  const out: string[] = [];
  for (const { name, type } of SHARED_OPTIONS) {
    if (!o.given(name) || name === 'json' || name === 'fail-after') continue;
    if (type === 'boolean') out.push(`--${name}`);
    else out.push(`--${name}`, type === 'list' ? o.list(name)!.join(',') : String(type === 'int' || type === 'number' ? o.number(name) : o.string(name)));
  }
  return out;
}

/** Everything but the links, from the shared options (identical in every stage process). */
function configFrom(o: ParsedOptions): InProcessConfig & { transport: string; recvTimeoutMs: number } {
  const wrap = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  };
  // Flag checks first: building the task loads data.
  const batch = o.int('batch')!, micro = o.int('micro')!;
  if (batch % micro !== 0) throw new UsageError(`--batch ${batch} does not split into --micro ${micro} equal micro-batches`);
  if (o.bool('resume') && !o.string('checkpoint-dir')) throw new UsageError('--resume needs --checkpoint-dir');
  const dpBits = o.int('dp-bits')!;
  if (![0, 4, 8].includes(dpBits)) throw new UsageError(`--dp-bits must be 0 (fp32), 8 or 4, got ${dpBits}`);
  const task = wrap(() => createTask({
    model: o.string('model') as TaskModel, seed: o.int('seed')!, examples: o.int('examples'), data: o.string('data'),
    dim: o.int('dim'), layers: o.int('layers'), heads: o.int('heads'), tokens: o.int('tokens'),
  }));
  const boundaries = o.list('boundaries')?.map((b) => {
    const n = Number(b);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--boundaries must list layer indices >= 1, got '${b}'`);
    return n;
  });
  const layers = task.layers();
  const ranges = wrap(() => partition(layers, o.int('stages')!, boundaries));
  for (const l of layers) l.dispose();
  return {
    task, ranges, replicas: o.int('replicas')!, batch, micro, steps: o.int('steps')!, seed: o.int('seed')!,
    sgd: { lr: o.number('lr')!, momentum: o.number('momentum')! },
    forward: wrap(() => parseCodec(o.string('forward')!, '--forward')), backward: wrap(() => parseCodec(o.string('backward')!, '--backward')),
    dpBits, cache: o.string('cache') as CacheMode, cacheDir: o.string('cache-dir'), checkpointDir: o.string('checkpoint-dir'), checkpointEvery: o.int('checkpoint-every')!, resume: o.bool('resume'),
    transport: o.string('transport')!, recvTimeoutMs: o.number('recv-timeout')! * 1000,
  };
}

/** Summary of a finished stage: what `--json` prints and the launcher aggregates. */
export interface StageSummary {
  rank: number;
  stage: number;
  replica: number;
  firstStep: number;
  steps: number;
  losses: number[];
  /** Bytes this stage sent (payload + framing), per link kind. */
  sentBytes: { prev: number; next: number; ring: number };
  payloadBytes: number;
  sentPerStep: number[];
  stepSeconds: number[];
  /** Seconds including connecting, and training only. */
  seconds: number;
  trainSeconds: number;
}

function summarize(rank: number, r: StageResult, seconds: number): StageSummary {
  const total = (s: { payloadBytes: number; framingBytes: number }) => s.payloadBytes + s.framingBytes;
  return {
    rank, stage: r.stage, replica: r.replica, firstStep: r.firstStep, steps: r.steps, losses: r.losses, seconds, trainSeconds: r.trainSeconds, sentPerStep: r.sentPerStep, stepSeconds: r.stepSeconds,
    sentBytes: { prev: total(r.sent.prev), next: total(r.sent.next), ring: total(r.sent.ring) },
    payloadBytes: r.sent.prev.payloadBytes + r.sent.next.payloadBytes + r.sent.ring.payloadBytes,
  };
}

export const stageSpec: CommandSpec = {
  name: 'stage',
  summary: 'run one pipeline stage process: --rank R --peers host:port,... (same options on every stage)',
  description: 'Start one process per stage (x replicas) with the same options and peer list; rank r listens on peers[r].',
  options: [
    { name: 'rank', type: 'int', min: 0, required: true, help: 'this process: stage (rank mod stages) of replica (rank div stages)' },
    { name: 'peers', type: 'list', required: true, help: 'host:port of every rank, in rank order' },
    ...SHARED_OPTIONS,
  ],
  examples: ['slimgrad stage --rank 0 --peers 10.0.0.1:7000,10.0.0.2:7000 --model charlm --stages 2'],
};

export const stage = defineCommand(stageSpec, async (o) => {
    const c = configFrom(o);
    if (c.transport === 'inproc') throw new UsageError('--transport must be tcp or zmq');
    const peers = o.list('peers')!;
    const S = c.ranges.length, R = c.replicas ?? 1;
    if (peers.length !== S * R) throw new UsageError(`--peers needs ${S * R} host:port entries (${S} stages x ${R} replicas), got ${peers.length}`);
    peers.forEach((p, i) => {
      try {
        parseAddress(p, `--peers entry ${i}`);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
    });
    const rank = o.int('rank')!;
    if (rank >= peers.length) throw new UsageError(`--rank must be below the ${peers.length} --peers entries, got ${rank}`);
    const t0 = performance.now();
    const links = await connectMesh({ rank, peers, neighbours: neighboursOf(rank, S, R), transport: c.transport as TransportKind, name: (r) => rankName(r, S, R, peers[r]) });
    for (const l of links.values()) l.recvTimeoutMs = c.recvTimeoutMs;
    const replica = Math.floor(rank / S);
    const report = c.ranges.length - 1 === rank % S && replica === 0 && !o.bool('json');
    let result: StageResult;
    try {
      result = await runStage({
        ...c, stage: rank % S, replica, ...stageLinks(rank, S, R, links),
        failAfter: o.int('fail-after'),
        onStep: report ? (s) => console.log(`step ${s.step + 1}/${c.steps} loss ${s.loss!.toFixed(4)} (${s.ms.toFixed(0)} ms)`) : undefined,
      });
    } finally {
      for (const l of links.values()) l.close();
    }
    if (o.bool('json')) printJson(summarize(rank, result, (performance.now() - t0) / 1000));
    disposeStage(result);
    return 0;
});

/** A free TCP port on this machine (the OS picks; closed again at once). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The command line that starts one stage process (same Node flags, so it also works under tsx). */
function stageCommand(): [string, string[]] {
  const here = fileURLToPath(import.meta.url);
  const entry = here.replace(/commands[\\/]pipeline\.(ts|js)$/, 'stage-entry.$1');
  // Keep module loaders (e.g. --import tsx), drop everything else (--test, inspector flags, ...).
  const flags: string[] = [];
  process.execArgv.forEach((a, i) => {
    if (/^--(import|require|loader|experimental-loader)=/.test(a)) flags.push(a);
    else if (/^--(import|require|loader|experimental-loader)$/.test(a) && process.execArgv[i + 1]) flags.push(a, process.execArgv[i + 1]!);
  });
  return [process.execPath, [...flags, entry]];
}

/**
 * The line of a child's stderr that says what went wrong: its last line, or for an uncaught
 * exception (stack frames, then Node's version banner) the error line above the stack.
 */
function lastMessage(stderr: string): string {
  const lines = stderr.trim().split('\n').filter((l) => l.trim() && !/^\s+at /.test(l) && !/^Node\.js v\d/.test(l));
  return lines.pop() ?? '';
}

/** Exit of one child: code, or the signal that killed it, and the last message it printed to stderr. */
interface ChildExit {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  error: string;
  at: number;
}

/** Seconds the launcher waits for the other stages after one fails, before killing them. */
export const STOP_GRACE_S = 10;

export interface LaunchOptions {
  /** Stage options shared by every rank (no --rank/--peers/--json). */
  args: string[];
  peers: string[];
  stages: number;
  replicas: number;
  /** Command prefix per rank (e.g. `ip netns exec ns0`). */
  wrap?: (rank: number) => string[];
  /** Make one rank stop with an error after some steps. */
  fail?: { rank: number; after: string };
  onStart?: (pids: (number | undefined)[]) => void;
}

/**
 * Starts one stage process per rank and waits for all. When one fails, the others stop by
 * themselves (their links fail); any still running after STOP_GRACE_S are killed. Throws an error
 * naming the first stage that failed, then the others.
 */
export async function launchStages(o: LaunchOptions): Promise<StageSummary[]> {
  const { peers, stages: S, replicas: R } = o;
  const [node, prefix] = stageCommand();
  const children: ChildProcess[] = [];
  const exits: ChildExit[] = [];
  const outputs: string[] = Array.from({ length: S * R }, () => '');
  await new Promise<void>((resolve) => {
    let finished = 0;
    let killTimer: NodeJS.Timeout | undefined;
    for (let rank = 0; rank < S * R; rank++) {
      const extra = o.fail?.rank === rank ? ['--fail-after', o.fail.after] : [];
      const cmd = [...(o.wrap?.(rank) ?? []), node, ...prefix, ...o.args, '--rank', String(rank), '--peers', peers.join(','), '--json', ...extra];
      const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (outputs[rank] += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code, signal) => {
        exits.push({ rank, code, signal, error: lastMessage(err), at: performance.now() });
        if ((code !== 0 || signal) && !killTimer) {
          // One stage failed: the others stop on their own (their links fail); kill stragglers after the grace period.
          killTimer = setTimeout(() => children.forEach((ch) => ch.exitCode === null && ch.signalCode === null && ch.kill('SIGKILL')), STOP_GRACE_S * 1000);
        }
        if (++finished === S * R) {
          clearTimeout(killTimer);
          resolve();
        }
      });
    }
    o.onStart?.(children.map((ch) => ch.pid));
  });
  const failures = exits.filter((e) => e.code !== 0 || e.signal).sort((x, y) => x.at - y.at);
  if (failures.length) {
    const first = failures[0]!;
    const why = (e: ChildExit) => `${rankName(e.rank, S, R, peers[e.rank])} ${e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`}${e.error ? `: ${e.error.replace(/^slimgrad stage: /, '')}` : ''}`;
    const spread = ((exits.reduce((m, e) => Math.max(m, e.at), 0) - first.at) / 1000).toFixed(1);
    throw new Error(`pipeline stopped: ${why(first)}\n${failures.slice(1).map((e) => `  then ${why(e)}`).join('\n')}\nall ${S * R} stage processes ended within ${spread} s of the first failure`);
  }
  return outputs.map((out, rank) => {
    try {
      return JSON.parse(out.trim().split('\n').pop()!) as StageSummary;
    } catch {
      throw new Error(`${rankName(rank, S, R, peers[rank])} finished without a summary`);
    }
  });
}

export const pipelineSpec: CommandSpec = {
  name: 'pipeline',
  summary: 'train a model split into pipeline stages, one process per stage, on this machine',
  description: 'Each stage (x --replicas) runs as `slimgrad stage` on a free local port; the first stage to fail stops all of them.',
  options: [
    ...SHARED_OPTIONS,
    { name: 'host', type: 'string', default: '127.0.0.1', help: 'address the stage processes listen on' },
    { name: 'fail-rank', type: 'int', min: 0, help: 'testing: the rank that --fail-after applies to' },
  ],
  examples: ['slimgrad pipeline --model charlm --stages 4 --steps 200 --batch 16 --micro 4 --forward delta:4 --backward fixpoint:8'],
};

export const pipeline = defineCommand(pipelineSpec, async (o) => {
    const c = configFrom(o);
    const S = c.ranges.length, R = c.replicas ?? 1;
    const t0 = performance.now();
    if (c.transport === 'inproc') {
      const results = await runInProcess(c);
      const summaries = results.map((r, rank) => summarize(rank, r, (performance.now() - t0) / 1000));
      results.forEach(disposeStage);
      return report(summaries, c, o.bool('json'));
    }
    const host = o.string('host')!;
    const peers: string[] = [];
    for (let r = 0; r < S * R; r++) peers.push(`${host}:${await freePort(host)}`);
    const passThrough = stageArgs(o);
    if (!o.bool('json')) console.log(`${c.task.name}: ${S} stages (layers ${c.ranges.map(([a, b]) => `${a}-${b - 1}`).join(' | ')}) x ${R} replica(s), ${c.transport}, forward ${o.string('forward')}, backward ${o.string('backward')}`);
    const failRank = o.int('fail-rank'), failAfter = o.int('fail-after');
    const fail = failRank !== undefined && failAfter !== undefined ? { rank: failRank, after: String(failAfter) } : undefined;
    const summaries = await launchStages({
      args: passThrough, peers, stages: S, replicas: R, fail,
      onStart: o.bool('json') ? undefined : (pids) => console.log(`stage processes: ${pids.map((pid, r) => `${rankName(r, S, R, peers[r])} pid ${pid}`).join(', ')}`),
    });
    return report(summaries, c, o.bool('json'));
});

/** Whole-pipeline numbers from the stage summaries: throughput over the training time, wire bytes per step. */
export function aggregate(summaries: StageSummary[], batch: number, replicas: number, stages: number) {
  const last = summaries.find((s) => s.stage === stages - 1 && s.replica === 0)!;
  // Each replica's last stage knows the loss of its share of the batch; the step's loss is their mean.
  const lastStages = summaries.filter((s) => s.stage === stages - 1);
  const losses = last.losses.map((_, i) => lastStages.reduce((a, s) => a + s.losses[i]!, 0) / lastStages.length);
  const steps = last.steps;
  const seconds = Math.max(...summaries.map((s) => s.trainSeconds));
  const wireBytes = summaries.reduce((n, s) => n + s.sentBytes.prev + s.sentBytes.next + s.sentBytes.ring, 0);
  const perStep = last.sentPerStep.map((_, i) => summaries.reduce((n, s) => n + (s.sentPerStep[i] ?? 0), 0));
  const tail = perStep.slice(-4);
  // Every stage waits for the others each step, so the last stage's step time is the pipeline's.
  const sorted = [...last.stepSeconds].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return {
    steps, firstStep: last.firstStep, losses, lossAfterSteps: losses[losses.length - 1],
    samplesPerSec: (steps * batch * replicas) / seconds,
    /** At the median step time: robust to load bursts on a shared machine. */
    medianSamplesPerSec: (batch * replicas) / median,
    wireBytesPerStep: wireBytes / steps,
    /** Mean over the last 4 steps (after the delta codec's fp32 warm-up epoch). */
    lastWireBytesPerStep: tail.reduce((a, b) => a + b, 0) / tail.length, seconds,
  };
}

function report(summaries: StageSummary[], c: { steps: number; batch: number; replicas?: number; ranges: unknown[] }, json: boolean): number {
  const out = { ...aggregate(summaries, c.batch, c.replicas ?? 1, c.ranges.length), stages: summaries };
  if (json) printJson(out);
  else {
    for (const [i, l] of out.losses.entries()) console.log(`step ${out.firstStep + i + 1}/${c.steps} loss ${l.toFixed(4)}`);
    console.log(`${out.steps} steps in ${out.seconds.toFixed(2)} s: ${out.samplesPerSec.toFixed(1)} samples/s, ${(out.wireBytesPerStep / 1024).toFixed(1)} KiB on the wire per step`);
  }
  return 0;
}

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
import { parseArgs } from 'node:util';
import { parseCodec, type CacheMode } from '../../distributed/codec.js';
import { neighboursOf, rankName, runInProcess, stageLinks, type InProcessConfig } from '../../distributed/pipeline.js';
import { disposeStage, runStage, type StageResult } from '../../distributed/stage.js';
import { createTask, partition, TASK_MODELS, type TaskModel } from '../../distributed/tasks.js';
import { connectMesh, parseAddress, type TransportKind } from '../../distributed/transport.js';
import { printJson, UsageError, type Command } from '../command.js';

const shared = {
  model: { type: 'string', default: 'charlm' },
  stages: { type: 'string', default: '2' },
  replicas: { type: 'string', default: '1' },
  steps: { type: 'string', default: '20' },
  batch: { type: 'string', default: '16' },
  micro: { type: 'string', default: '4' },
  lr: { type: 'string', default: '0.1' },
  momentum: { type: 'string', default: '0.9' },
  forward: { type: 'string', default: 'fp32' },
  backward: { type: 'string', default: 'fp32' },
  'dp-bits': { type: 'string', default: '0' },
  transport: { type: 'string', default: 'tcp' },
  cache: { type: 'string', default: 'memory' },
  'cache-dir': { type: 'string', default: '.' },
  'checkpoint-dir': { type: 'string' },
  'checkpoint-every': { type: 'string', default: '0' },
  resume: { type: 'boolean', default: false },
  seed: { type: 'string', default: '0' },
  examples: { type: 'string' },
  data: { type: 'string' },
  dim: { type: 'string' },
  layers: { type: 'string' },
  heads: { type: 'string' },
  tokens: { type: 'string' },
  boundaries: { type: 'string' },
  'recv-timeout': { type: 'string', default: '120' },
  json: { type: 'boolean', default: false },
} as const;

type Values = { [K in keyof typeof shared]: (typeof shared)[K]['type'] extends 'boolean' ? boolean : string | undefined };

function int(v: Values, flag: keyof typeof shared, min = 0): number {
  const s = v[flag] as string;
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${flag} must be an integer >= ${min}, got '${s}'`);
  return n;
}

function num(v: Values, flag: keyof typeof shared): number {
  const n = Number(v[flag]);
  if (!Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got '${v[flag]}'`);
  return n;
}

const optionalInt = (v: Values, flag: keyof typeof shared) => (v[flag] === undefined ? undefined : int(v, flag, 1));

/** Everything but the links, from the shared options (identical in every stage process). */
function configFrom(v: Values): InProcessConfig & { transport: string; recvTimeoutMs: number } {
  if (!TASK_MODELS.includes(v.model as TaskModel)) throw new UsageError(`--model must be one of ${TASK_MODELS.join(', ')}, got '${v.model}'`);
  const wrap = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  };
  const task = wrap(() => createTask({
    model: v.model as TaskModel, seed: int(v, 'seed'), examples: optionalInt(v, 'examples'), data: v.data,
    dim: optionalInt(v, 'dim'), layers: optionalInt(v, 'layers'), heads: optionalInt(v, 'heads'), tokens: optionalInt(v, 'tokens'),
  }));
  const stages = int(v, 'stages', 1);
  const boundaries = v.boundaries?.split(',').map(Number);
  const layers = task.layers();
  const ranges = wrap(() => partition(layers, stages, boundaries));
  for (const l of layers) l.dispose();
  const dpBits = int(v, 'dp-bits');
  if (![0, 4, 8].includes(dpBits)) throw new UsageError(`--dp-bits must be 0 (fp32), 8 or 4, got ${dpBits}`);
  const cache = v.cache as CacheMode;
  if (!['memory', 'file', 'lowbit'].includes(cache)) throw new UsageError(`--cache must be memory, file or lowbit, got '${v.cache}'`);
  if (!['tcp', 'zmq', 'inproc'].includes(v.transport!)) throw new UsageError(`--transport must be tcp, zmq or inproc, got '${v.transport}'`);
  if (int(v, 'batch', 1) % int(v, 'micro', 1) !== 0) throw new UsageError(`--batch ${v.batch} does not split into --micro ${v.micro} equal micro-batches`);
  if (v.resume && !v['checkpoint-dir']) throw new UsageError('--resume needs --checkpoint-dir');
  return {
    task, ranges, replicas: int(v, 'replicas', 1), batch: int(v, 'batch', 1), micro: int(v, 'micro', 1), steps: int(v, 'steps', 1), seed: int(v, 'seed'),
    sgd: { lr: num(v, 'lr'), momentum: num(v, 'momentum') },
    forward: wrap(() => parseCodec(v.forward!, '--forward')), backward: wrap(() => parseCodec(v.backward!, '--backward')),
    dpBits, cache, cacheDir: v['cache-dir'], checkpointDir: v['checkpoint-dir'], checkpointEvery: int(v, 'checkpoint-every'), resume: v.resume,
    transport: v.transport!, recvTimeoutMs: num(v, 'recv-timeout') * 1000,
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

export const stage: Command = {
  name: 'stage',
  summary: 'run one pipeline stage process: --rank R --peers host:port,... (same options on every stage)',
  async run(args) {
    const { values } = parseArgs({ args, options: { ...shared, rank: { type: 'string' }, peers: { type: 'string' }, 'fail-after': { type: 'string' } } });
    const v = values as Values & { rank?: string; peers?: string; 'fail-after'?: string };
    const c = configFrom(v);
    if (c.transport === 'inproc') throw new UsageError('--transport must be tcp or zmq');
    const peers = (v.peers ?? '').split(',').filter(Boolean);
    const S = c.ranges.length, R = c.replicas ?? 1;
    if (peers.length !== S * R) throw new UsageError(`--peers needs ${S * R} host:port entries (${S} stages x ${R} replicas), got ${peers.length}`);
    peers.forEach((p, i) => {
      try {
        parseAddress(p, `--peers entry ${i}`);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
    });
    const rank = Number(v.rank);
    if (!Number.isInteger(rank) || rank < 0 || rank >= peers.length) throw new UsageError(`--rank must be an integer in [0, ${peers.length}), got '${v.rank}'`);
    const t0 = performance.now();
    const links = await connectMesh({ rank, peers, neighbours: neighboursOf(rank, S, R), transport: c.transport as TransportKind, name: (r) => rankName(r, S, R, peers[r]) });
    for (const l of links.values()) l.recvTimeoutMs = c.recvTimeoutMs;
    const replica = Math.floor(rank / S);
    const report = c.ranges.length - 1 === rank % S && replica === 0 && !v.json;
    let result: StageResult;
    try {
      result = await runStage({
        ...c, stage: rank % S, replica, ...stageLinks(rank, S, R, links),
        failAfter: v['fail-after'] === undefined ? undefined : Number(v['fail-after']),
        onStep: report ? (s) => console.log(`step ${s.step + 1}/${c.steps} loss ${s.loss!.toFixed(4)} (${s.ms.toFixed(0)} ms)`) : undefined,
      });
    } finally {
      for (const l of links.values()) l.close();
    }
    if (v.json) printJson(summarize(rank, result, (performance.now() - t0) / 1000));
    disposeStage(result);
    return 0;
  },
};

/** A free TCP port on this machine (the OS picks; closed again at once). */
function freePort(host: string): Promise<number> {
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
  const entry = here.replace(/pipeline\.(ts|js)$/, 'stage-entry.$1');
  // Keep module loaders (e.g. --import tsx), drop everything else (--test, inspector flags, ...).
  const flags: string[] = [];
  process.execArgv.forEach((a, i) => {
    if (/^--(import|require|loader|experimental-loader)=/.test(a)) flags.push(a);
    else if (/^--(import|require|loader|experimental-loader)$/.test(a) && process.execArgv[i + 1]) flags.push(a, process.execArgv[i + 1]!);
  });
  return [process.execPath, [...flags, entry]];
}

/** Exit of one child: code, or the signal that killed it, and the last line it printed to stderr. */
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
        exits.push({ rank, code, signal, error: err.trim().split('\n').pop() ?? '', at: performance.now() });
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

export const pipeline: Command = {
  name: 'pipeline',
  summary: 'train a model split into pipeline stages, one process per stage, on this machine (--stages N --model charlm|resnet20|mlp)',
  async run(args) {
    const { values } = parseArgs({ args, options: { ...shared, host: { type: 'string', default: '127.0.0.1' }, 'fail-rank': { type: 'string' }, 'fail-after': { type: 'string' } } });
    const v = values as Values & { host: string; 'fail-rank'?: string; 'fail-after'?: string };
    const c = configFrom(v);
    const S = c.ranges.length, R = c.replicas ?? 1;
    const t0 = performance.now();
    if (c.transport === 'inproc') {
      const results = await runInProcess(c);
      const summaries = results.map((r, rank) => summarize(rank, r, (performance.now() - t0) / 1000));
      results.forEach(disposeStage);
      return report(summaries, c, v.json);
    }
    const peers: string[] = [];
    for (let r = 0; r < S * R; r++) peers.push(`${v.host}:${await freePort(v.host)}`);
    const passThrough = args.filter((a, i) => !['--fail-rank', '--fail-after', '--host', '--json'].includes(a) && !['--fail-rank', '--fail-after', '--host'].includes(args[i - 1]!)).filter((a) => !/^--(fail-rank|fail-after|host|json)=/.test(a));
    if (!v.json) console.log(`${c.task.name}: ${S} stages (layers ${c.ranges.map(([a, b]) => `${a}-${b - 1}`).join(' | ')}) x ${R} replica(s), ${c.transport}, forward ${v.forward}, backward ${v.backward}`);
    const fail = v['fail-rank'] !== undefined && v['fail-after'] !== undefined ? { rank: Number(v['fail-rank']), after: v['fail-after'] } : undefined;
    const summaries = await launchStages({
      args: passThrough, peers, stages: S, replicas: R, fail,
      onStart: v.json ? undefined : (pids) => console.log(`stage processes: ${pids.map((pid, r) => `${rankName(r, S, R, peers[r])} pid ${pid}`).join(', ')}`),
    });
    return report(summaries, c, v.json);
  },
};

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

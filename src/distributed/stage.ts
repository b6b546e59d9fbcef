/**
 * One pipeline stage: a contiguous range of the model's layers trained with the GPipe schedule
 * (all micro-batch forwards, then all backwards in micro-batch order, then one optimizer step),
 * exchanging activations and gradients with its neighbours through links, and averaging
 * gradients with its data-parallel replicas by ring all-reduce. Any error (a neighbour gone, a
 * cache mismatch, a bad frame) is sent to every neighbour as an 'abort' frame, so the whole
 * pipeline stops instead of waiting.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { backward } from '../autograd/backward.js';
import { scope } from '../core/scope.js';
import { fromValues, Tensor } from '../core/tensor.js';
import { decodeSafetensors, encodeSafetensors } from '../io/safetensors.js';
import type { Module } from '../nn/module.js';
import { mulScalar } from '../ops/index.js';
import { SGD, type SGDOptions } from '../optim/optimizer.js';
import { ErrorFeedback, ringAllReduce, type Ring } from './allreduce.js';
import { makeCache, TensorDecoder, TensorEncoder, type CacheMode, type CodecSpec } from './codec.js';
import type { FrameHeader } from './frame.js';
import { batchIds, type PipelineTask } from './tasks.js';
import { emptyStats, type Link, type LinkStats } from './transport.js';

export interface StageConfig {
  task: PipelineTask;
  /** Layer range of every stage (`partition`). */
  ranges: [number, number][];
  stage: number;
  replica?: number;
  replicas?: number;
  /** Examples per replica per step, split into `micro` equal micro-batches. */
  batch: number;
  micro: number;
  steps: number;
  seed?: number;
  sgd: SGDOptions;
  forward: CodecSpec;
  backward: CodecSpec;
  /** Data-parallel gradient bits: 0 (fp32), 8 or 4. */
  dpBits?: number;
  cache?: CacheMode;
  cacheDir?: string;
  prev?: Link;
  next?: Link;
  ring?: Ring;
  /** Writes this stage's checkpoint every `checkpointEvery` steps (and after the last) into this folder. */
  checkpointDir?: string;
  checkpointEvery?: number;
  /** Continue from this stage's checkpoint in `checkpointDir`. */
  resume?: boolean;
  /** Stop with an error after this many steps (fault-injection for tests and demos). */
  failAfter?: number;
  /** Called after each step (the last stage knows the loss). */
  onStep?: (s: StepReport) => void;
}

export interface StepReport {
  step: number;
  /** Sum of the micro-batch losses (each scaled by 1/micro): the macro-batch mean; last stage only. */
  loss?: number;
  ms: number;
}

export interface StageResult {
  stage: number;
  replica: number;
  /** First step run (after a resume) and steps run. */
  firstStep: number;
  steps: number;
  losses: number[];
  /** Seconds from the start of the first step to the end of the last. */
  trainSeconds: number;
  /** Bytes (payload + framing) this stage sent during each step. */
  sentPerStep: number[];
  /** Wall-clock seconds of each step. */
  stepSeconds: number[];
  /** Bytes sent by this stage, per link. */
  sent: { prev: LinkStats; next: LinkStats; ring: LinkStats };
  /** This stage's parameters, in layer order (still alive: dispose with `disposeStage`). */
  params: Tensor[];
  layers: Module[];
}

/** SGD whose momentum buffers and step count can be saved and restored (for stage checkpoints). */
class StageSGD extends SGD {
  momentumBuffer(p: Tensor): Tensor {
    return this.stateOf(p, 1)[0]!;
  }
  setSteps(n: number): void {
    this.stepCount = n;
  }
}

/** Runs layers in order (as Sequential does), freeing intermediates. */
export function forwardLayers(layers: readonly Module[], x: Tensor): Tensor {
  let h = x;
  for (const l of layers) {
    const next = l.call(h);
    if (h !== x) h.dispose();
    h = next;
  }
  return h === x ? x.alias() : h;
}

function stageLabel(c: StageConfig): string {
  return (c.replicas ?? 1) > 1 ? `stage ${c.stage} of replica ${c.replica ?? 0}` : `stage ${c.stage}`;
}

function checkpointPath(c: StageConfig): string {
  return `${c.checkpointDir}/stage-${c.stage}-replica-${c.replica ?? 0}.safetensors`;
}

function stateTensors(layers: readonly Module[], opt: StageSGD | null): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  layers.forEach((l, i) => {
    for (const [n, t] of l.stateDict()) {
      out.set(`layer${i}.${n}`, t);
      if (opt && opt.momentum && t.requiresGrad) out.set(`momentum.layer${i}.${n}`, opt.momentumBuffer(t));
    }
  });
  return out;
}

function saveCheckpoint(c: StageConfig, layers: readonly Module[], opt: StageSGD, step: number): void {
  mkdirSync(c.checkpointDir!, { recursive: true });
  const path = checkpointPath(c);
  writeFileSync(`${path}.tmp`, encodeSafetensors(stateTensors(layers, opt), { step: String(step), stage: String(c.stage) }));
  renameSync(`${path}.tmp`, path); // a crash mid-write leaves the previous checkpoint intact
}

/** Loads this stage's checkpoint; returns the number of steps it had completed. */
function loadCheckpoint(c: StageConfig, layers: readonly Module[], opt: StageSGD): number {
  const path = checkpointPath(c);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${stageLabel(c)}: cannot resume, ${(e as Error).message}`);
  }
  const { tensors, metadata } = decodeSafetensors(bytes, path);
  for (const [name, t] of stateTensors(layers, opt)) {
    const s = tensors.get(name);
    if (!s || s.shape.join() !== t.shape.join()) throw new Error(`${path}: '${name}' is missing or has another shape; was it written for this stage split?`);
    t.data().set(s.values);
    t.bumpVersion();
  }
  const step = Number(metadata.step);
  if (!Number.isInteger(step) || step < 0) throw new Error(`${path}: no step count in the metadata`);
  opt.setSteps(step);
  return step;
}

async function recvExpected(link: Link, kind: 'act' | 'grad', step: number, micro: number): Promise<FrameHeader & { payload: Uint8Array }> {
  const f = await link.recv();
  const h = f.header;
  if (h.kind !== kind || h.step !== step || h.micro !== micro) {
    throw new Error(`${link.peer} sent a '${h.kind}' frame for step ${h.step} micro-batch ${h.micro}, expected '${kind}' for step ${step} micro-batch ${micro}; were the stages started with the same options?`);
  }
  return { ...h, payload: f.payload };
}

function floatValues(t: Tensor): Float32Array {
  const v = t.values();
  if (!(v instanceof Float32Array)) throw new Error(`pipeline boundaries carry float32 tensors, got ${t.dtype}`);
  return v;
}

/** Frees what `runStage` returned. */
export function disposeStage(r: StageResult): void {
  for (const l of r.layers) l.dispose();
}

/** Trains one stage to the end (or throws, after telling every neighbour to stop). */
export async function runStage(c: StageConfig): Promise<StageResult> {
  const S = c.ranges.length;
  const last = c.stage === S - 1, first = c.stage === 0;
  const label = stageLabel(c);
  if (!Number.isInteger(c.micro) || c.micro < 1 || c.batch % c.micro !== 0) throw new Error(`batch ${c.batch} must split into ${c.micro} equal micro-batches`);
  if (!first && !c.prev) throw new Error(`${label}: no link to the previous stage`);
  if (!last && !c.next) throw new Error(`${label}: no link to the next stage`);
  const all = c.task.layers();
  const [a, b] = c.ranges[c.stage]!;
  const layers = all.slice(a, b);
  all.forEach((l, i) => {
    if (i < a || i >= b) l.dispose();
  });
  const params = layers.flatMap((l) => l.parameters());
  const opt = new StageSGD(params, c.sgd);
  const links = [c.prev, c.next, c.ring?.next, c.ring?.prev].filter((l): l is Link => !!l);
  const mb = c.batch / c.micro;
  const caches: { close(): void }[] = [];
  const cacheMode = c.cache ?? 'memory';
  const cacheDir = c.cacheDir ?? '.';
  if (cacheMode === 'file') mkdirSync(cacheDir, { recursive: true });
  const cacheFor = (side: string, boundary: number) => {
    const cache = makeCache(cacheMode, cacheDir, `boundary-${boundary}-${side}-replica-${c.replica ?? 0}`);
    caches.push(cache);
    return cache;
  };
  const actOut = !last ? new TensorEncoder(c.forward, c.forward.kind === 'delta' ? cacheFor('sender', c.stage) : null) : null;
  const actIn = !first ? new TensorDecoder(c.forward, c.forward.kind === 'delta' ? cacheFor('receiver', c.stage - 1) : null) : null;
  const gradOut = !first ? new TensorEncoder(c.backward) : null;
  const gradIn = !last ? new TensorDecoder(c.backward) : null;
  const feedback = c.dpBits ? new ErrorFeedback(params.reduce((n, p) => n + p.size, 0)) : undefined;
  const losses: number[] = [], sentPerStep: number[] = [], stepSeconds: number[] = [];
  const sentSoFar = () => [...new Set(links)].reduce((n, l) => n + l.stats.payloadBytes + l.stats.framingBytes, 0);
  let firstStep = 0, trainStart = 0, sentBefore = 0;
  try {
    if (c.resume) firstStep = loadCheckpoint(c, layers, opt);
    trainStart = performance.now();
    for (let step = firstStep; step < c.steps; step++) {
      const t0 = performance.now();
      if (c.failAfter !== undefined && step - firstStep >= c.failAfter) throw new Error(`${label}: stopping after ${c.failAfter} steps as asked (--fail-after)`);
      const ids = batchIds(c.task.examples, c.batch, c.replicas ?? 1, c.replica ?? 0, step, c.seed ?? 0);
      const inputs: Tensor[] = [], outputs: Tensor[] = [];
      // Sends are not awaited one by one: micro-batch m's transfer overlaps the compute of m + 1.
      const sending: Promise<void>[] = [];
      const send = (p: Promise<void>) => {
        p.catch(() => {}); // surfaced by the Promise.all below, or superseded by the error that ends the step
        sending.push(p);
      };
      let loss = 0;
      try {
        // Forward: every micro-batch.
        for (let m = 0; m < c.micro; m++) {
          const mids = ids.slice(m * mb, (m + 1) * mb);
          let x: Tensor;
          if (first) x = c.task.inputs(mids);
          else {
            const f = await recvExpected(c.prev!, 'act', step, m);
            const where = `${label}: activation of step ${step} micro-batch ${m} from ${c.prev!.peer}`;
            x = fromValues(actIn!.decode(f, f.payload, where), f.shape!);
            x.requiresGrad = true;
          }
          inputs.push(x);
          const out = scope(() => {
            const y = forwardLayers(layers, x);
            if (!last) return y;
            const t = c.task.targets(mids);
            return mulScalar(c.task.loss(y, t), 1 / c.micro);
          });
          outputs.push(out);
          if (last) loss += out.item();
          else {
            const e = actOut!.encode(floatValues(out), out.shape, mids);
            send(c.next!.send({ kind: 'act', step, micro: m, boundary: c.stage, ids: mids, codec: e.codec, bits: e.bits, shape: [...out.shape], hash: e.hash }, e.payload));
          }
        }
        // Backward: micro-batches in the same order, so gradients accumulate as in one process.
        for (let m = 0; m < c.micro; m++) {
          const mids = ids.slice(m * mb, (m + 1) * mb);
          const out = outputs[m]!;
          if (last) scope(() => backward(out));
          else {
            const f = await recvExpected(c.next!, 'grad', step, m);
            const where = `${label}: gradient of step ${step} micro-batch ${m} from ${c.next!.peer}`;
            const g = fromValues(gradIn!.decode(f, f.payload, where), f.shape!);
            scope(() => backward(out, { grad: g }));
            g.dispose();
          }
          out.dispose();
          if (!first) {
            const x = inputs[m]!;
            if (!x.grad) throw new Error(`${label}: the stage's output does not depend on its input`);
            const e = gradOut!.encode(floatValues(x.grad), x.shape, mids);
            send(c.prev!.send({ kind: 'grad', step, micro: m, boundary: c.stage - 1, ids: mids, codec: e.codec, bits: e.bits, shape: [...x.shape] }, e.payload));
          }
        }
        await Promise.all(sending);
      } finally {
        for (const t of [...inputs, ...outputs]) t.dispose();
      }
      if (c.ring && c.ring.size > 1) {
        const flat = new Float32Array(params.reduce((n, p) => n + p.size, 0));
        let o = 0;
        for (const p of params) {
          if (p.grad) flat.set(floatValues(p.grad), o);
          o += p.size;
        }
        await ringAllReduce(flat, c.ring, { bits: c.dpBits ?? 0, step, feedback });
        o = 0;
        for (const p of params) {
          if (!p.grad) p.grad = Tensor.empty(p.shape, p.dtype, 'gradient');
          p.grad.data().set(flat.subarray(o, o + p.size));
          p.grad.bumpVersion();
          o += p.size;
        }
      }
      opt.step();
      opt.zeroGrad();
      if (last) losses.push(loss);
      sentPerStep.push(sentSoFar() - sentBefore);
      stepSeconds.push((performance.now() - t0) / 1000);
      sentBefore = sentSoFar();
      if (c.checkpointDir && (step + 1 === c.steps || (c.checkpointEvery && (step + 1) % c.checkpointEvery === 0))) saveCheckpoint(c, layers, opt, step + 1);
      c.onStep?.({ step, loss: last ? loss : undefined, ms: performance.now() - t0 });
    }
  } catch (e) {
    const err = e as Error;
    const message = err.message.startsWith(label) ? err.message : `${label}: ${err.message}`;
    await Promise.all(links.map((l) => l.abort(message)));
    opt.dispose();
    for (const l of layers) l.dispose();
    throw Object.assign(new Error(message), { cause: err });
  } finally {
    for (const k of caches) k.close();
  }
  const trainSeconds = (performance.now() - trainStart) / 1000;
  opt.dispose();
  const stats = (l?: Link) => (l ? { ...l.stats } : emptyStats());
  const ringStats = emptyStats();
  for (const l of new Set([c.ring?.next, c.ring?.prev])) {
    if (!l || l === c.prev || l === c.next) continue;
    ringStats.framesSent += l.stats.framesSent;
    ringStats.payloadBytes += l.stats.payloadBytes;
    ringStats.framingBytes += l.stats.framingBytes;
  }
  return { stage: c.stage, replica: c.replica ?? 0, firstStep, steps: c.steps - firstStep, losses, trainSeconds, sentPerStep, stepSeconds, sent: { prev: stats(c.prev), next: stats(c.next), ring: ringStats }, params, layers };
}

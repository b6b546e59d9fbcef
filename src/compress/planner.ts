/**
 * Memory planning for activation-compressed training:
 *
 * - `planSavedBytes` predicts, before running at the real batch, the saved-for-backward bytes of
 *   a forward pass under a compression config. It runs the forward twice on tiny batches with
 *   recording hooks (nothing is compressed or kept), extrapolates every saved tensor's shape to
 *   the target batch (dimensions are affine in the batch), and prices each save with the
 *   encoding the policy would choose at that shape, counting shared copies once (as the runtime
 *   dedups them).
 * - `measureStep` runs one real training step and reads the ledger: saved bytes after forward,
 *   peak total bytes during the step, time.
 * - `findMaxBatch` finds the largest batch whose step peak fits a memory cap (doubling, then
 *   binary search), with any probe: real steps, or `fitPeakModel`'s affine fit of two real steps.
 */
import { backward } from '../autograd/backward.js';
import type { AutogradNode } from '../autograd/node.js';
import { withSavedTensorHooks, type SaveInfo, type SavedTensorHooks } from '../autograd/saved.js';
import { memory, resetPeakMemory } from '../core/ledger.js';
import { scope } from '../core/scope.js';
import { isFloat, type DType } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import { Compression } from './act.js';
import { encodingName, packedByteLength } from './codecs.js';
import { ActPolicy, contextOf, type ActConfig, type ActMode } from './policy.js';

/** Builds a batch of `batch` samples, runs the model and returns the loss (a tensor requiring grad). */
export type ForwardFn = (batch: number) => Tensor;

/** Frees the saved values of every node of a graph that will not be differentiated. */
export function releaseGraph(root: Tensor): void {
  const seen = new Set<AutogradNode>();
  const stack: AutogradNode[] = root.gradFn ? [root.gradFn.node as AutogradNode] : [];
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    n.releaseSaved();
    for (const e of n.inputs) if (e && 'node' in e) stack.push(e.node);
  }
}

export interface SaveRecord {
  info: SaveInfo;
  shape: readonly number[];
  dtype: DType;
  isNetworkInput: boolean;
  /** Identity of the packed copy the runtime would share (without the encoding). */
  viewKey: string;
  storageBytes: number;
  storageId: number;
  maxInt: number;
}

function record(forward: ForwardFn, batch: number): SaveRecord[] {
  const out: SaveRecord[] = [];
  const hooks: SavedTensorHooks<null> = {
    pack(t, info) {
      let maxInt = 0;
      if (!isFloat(t.dtype) && (info.role === 'mask' || info.role === 'index')) {
        const v = t.isContiguous() ? t.data() : t.values();
        for (let i = 0; i < v.length; i++) if (v[i]! > maxInt) maxInt = v[i]!;
      }
      out.push({
        info, shape: t.shape, dtype: t.dtype, isNetworkInput: contextOf(info, t).isNetworkInput,
        viewKey: `${info.storageId}:${info.version}:${t.offset}:${t.shape.join('x')}:${t.strides.join(',')}`,
        storageBytes: t.storage.byteLength, storageId: t.storage.id, maxInt,
      });
      return null;
    },
    unpack(_p, info) {
      throw new Error(`planSavedBytes: '${info.op}' read a saved value; the planner's forward cannot be differentiated`);
    },
  };
  scope(() => {
    const loss = withSavedTensorHooks(hooks, () => forward(batch));
    releaseGraph(loss);
  });
  return out;
}

export interface PlannedSave {
  op: string;
  name: string;
  module: string;
  shape: number[];
  encoding: string;
  /** Bytes this save adds (0 when it shares a copy already counted). */
  bytes: number;
}

export interface SavedBytesPlan {
  batch: number;
  mode: ActMode;
  savedBytes: number;
  byOp: Record<string, number>;
  saves: PlannedSave[];
}

/** The saves of a forward recorded at two probe batches (reusable across modes and batches). */
export interface SaveRecording {
  readonly probeBatches: readonly [number, number];
  readonly saves: readonly [SaveRecord[], SaveRecord[]];
}

/** Runs `forward` at two tiny batches with recording hooks (nothing is compressed or kept). */
export function recordSaves(forward: ForwardFn, probeBatches: [number, number] = [2, 3]): SaveRecording {
  const [b0, b1] = probeBatches;
  if (!(Number.isInteger(b0) && Number.isInteger(b1) && b0 >= 1 && b1 > b0)) throw new RangeError(`planSavedBytes: probe batches must be integers 1 <= b0 < b1, got ${probeBatches}`);
  const r0 = record(forward, b0), r1 = record(forward, b1);
  if (r0.length !== r1.length) throw new Error(`planSavedBytes: the forward saved ${r0.length} values at batch ${b0} but ${r1.length} at batch ${b1}; its structure must not depend on the batch`);
  return { probeBatches: [b0, b1], saves: [r0, r1] };
}

/**
 * Predicts the saved-for-backward bytes of `forward(batch)` under `config` (pass a
 * `recordSaves` result instead of `forward` to price several modes or batches from one recording).
 *
 * @example
 * const plan = planSavedBytes((b) => crossEntropy(model.call(images(b)), labels(b)), 128, { mode: 'int4', model });
 * console.log(plan.savedBytes / 2 ** 20, 'MiB');
 */
export function planSavedBytes(forward: ForwardFn | SaveRecording, batch: number, config: ActMode | ActConfig): SavedBytesPlan {
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`planSavedBytes: batch must be a positive integer, got ${batch}`);
  const policy = new ActPolicy(config);
  const recording = typeof forward === 'function' ? recordSaves(forward) : forward;
  const [b0, b1] = recording.probeBatches;
  const [r0, r1] = recording.saves;
  const at = (v0: number, v1: number) => v0 + ((v1 - v0) * (batch - b0)) / (b1 - b0);
  const counted = new Set<string>();
  const byOp: Record<string, number> = {};
  const saves: PlannedSave[] = [];
  let total = 0;
  r1.forEach((s1, i) => {
    const s0 = r0[i]!;
    if (s0.info.op !== s1.info.op || s0.info.name !== s1.info.name || s0.shape.length !== s1.shape.length) {
      throw new Error(`planSavedBytes: save #${i} is ${s0.info.op}.${s0.info.name} at batch ${b0} but ${s1.info.op}.${s1.info.name} at batch ${b1}`);
    }
    const shape = s1.shape.map((d, k) => at(s0.shape[k]!, d));
    const { op, role, exact, group, module, isParameter } = s1.info;
    const encoding = policy.resolve({ op, role, exact, group, module, isParameter, shape, dtype: s1.dtype, isNetworkInput: s1.isNetworkInput });
    const name = encodingName(encoding);
    let bytes = 0;
    if (encoding.kind === 'keep') {
      // A kept value books its whole storage once, parameters never (as the runtime does).
      const key = `storage:${s1.storageId}`;
      if (!s1.info.isParameter && !counted.has(key)) {
        counted.add(key);
        bytes = at(s0.storageBytes, s1.storageBytes);
      }
    } else {
      const key = policy.dedup ? `${s1.viewKey}:${name}` : `#${i}`;
      if (!counted.has(key)) {
        counted.add(key);
        const indexBits = Math.max(1, Math.ceil(Math.log2(Math.max(s0.maxInt, s1.maxInt) + 1)));
        bytes = packedByteLength(encoding, shape, indexBits);
      }
    }
    total += bytes;
    byOp[s1.info.op] = (byOp[s1.info.op] ?? 0) + bytes;
    saves.push({ op: s1.info.op, name: s1.info.name, module: s1.info.module, shape, encoding: name, bytes });
  });
  return { batch, mode: policy.mode, savedBytes: total, byOp, saves };
}

export interface StepMeasurement {
  /** Saved-for-backward bytes alive after forward (ledger 'saved'). */
  savedBytes: number;
  /** Peak of all ledger bytes during the step (forward, backward, `after`). */
  peakBytes: number;
  /** The peak minus the bytes already alive when the step started (what the step itself adds). */
  stepPeakBytes: number;
  stepMs: number;
}

/**
 * Runs one training step (forward under `session`, backward, then `after`, e.g. the optimizer
 * step) and measures it with the ledger.
 */
export function measureStep(forward: ForwardFn, batch: number, session: Compression, after?: () => void): StepMeasurement {
  resetPeakMemory();
  const start = memory();
  const savedBefore = start.current.saved;
  let savedBytes = 0;
  const t0 = performance.now();
  scope(() => {
    const loss = session.run(() => forward(batch));
    savedBytes = memory().current.saved - savedBefore;
    backward(loss);
  });
  after?.();
  const stepMs = performance.now() - t0;
  const peakBytes = memory().peakTotalBytes;
  return { savedBytes, peakBytes, stepPeakBytes: peakBytes - start.totalBytes, stepMs };
}

/** Peak bytes of a step at a batch size (from a real step or a model of it). */
export type PeakProbe = (batch: number) => number;

/**
 * The largest batch in [1, maxBatch] whose probed peak is at most `capBytes` (0 if none). Peaks
 * must grow with the batch. Doubles from 1, then binary-searches.
 */
export function findMaxBatch(probe: PeakProbe, capBytes: number, maxBatch = 1 << 20): number {
  if (!(capBytes > 0)) throw new RangeError(`findMaxBatch: capBytes must be positive, got ${capBytes}`);
  if (probe(1) > capBytes) return 0;
  let good = 1, bad = 0;
  while (bad === 0) {
    const next = Math.min(good * 2, maxBatch);
    if (next === good) return good;
    if (probe(next) <= capBytes) good = next;
    else bad = next;
  }
  while (bad - good > 1) {
    const mid = (good + bad) >>> 1;
    if (probe(mid) <= capBytes) good = mid;
    else bad = mid;
  }
  return good;
}

/** Affine model of the step peak, fitted to two real steps: peak(B) = fixed + perSample·B. */
export interface PeakModel {
  fixed: number;
  perSample: number;
  probe: PeakProbe;
}

export function fitPeakModel(probe: PeakProbe, b0: number, b1: number): PeakModel {
  const p0 = probe(b0), p1 = probe(b1);
  const perSample = (p1 - p0) / (b1 - b0);
  const fixed = p0 - perSample * b0;
  return { fixed, perSample, probe: (b) => fixed + perSample * b };
}

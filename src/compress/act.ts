/**
 * Activation-compressed training: compresses every value saved for backward inside a scope,
 * through the engine's saved-tensor hooks (autograd/saved.ts), choosing each value's encoding
 * with an `ActPolicy` and keeping one packed copy per (storage, version, view, encoding) shared by
 * all consumers (act.md §11), released when the last consumer's backward has run.
 *
 * @example
 * const act = new Compression({ mode: 'int4', seed: 1, model });
 * for (const [x, y] of batches) {
 *   const loss = act.run(() => crossEntropy(model.call(x), y)); // saves are packed at 4 bits
 *   backward(loss); // unpacked one node at a time
 *   opt.step();
 * }
 * // one-off: withCompression('int2', () => ...)
 */
import { grad } from '../autograd/backward.js';
import { bookSaved, unbookSaved, withSavedTensorHooks, type SaveInfo, type SavedTensorHooks } from '../autograd/saved.js';
import { Tensor } from '../core/tensor.js';
import type { Module } from '../nn/module.js';
import { encodingName, packTensor, quantNoiseEnergy, releasePacked, unpackTensor, type Encoding, type PackedTensor } from './codecs.js';
import { ActPolicy, contextOf, type ActConfig, type ActMode } from './policy.js';
import { AutoPrecision, PROBE_BITS, type AutoSave } from './auto.js';
import { mesaBatchRanges, mesaHeads } from './codecs.js';

/** Mesa's running-range decay λ (act.md §6.1). */
const MESA_DECAY = 0.9;

interface Entry {
  readonly key: string;
  readonly packed: PackedTensor;
  refs: number;
}

/** What a slot holds: a shared packed entry, or a kept view of the original storage. */
interface Handle {
  readonly entry: Entry;
  /** Bytes booked for this slot (a deduplicated consumer books 0). */
  readonly bytes: number;
  readonly keptStorage: boolean;
  /** An 'auto' save being measured on this (estimation) step. */
  readonly measure?: AutoSave;
  /** On a calibration step: the quant encoding a probe of this tensor uses (the save itself is kept exact). */
  readonly probe?: Extract<Encoding, { kind: 'quant' }>;
}

/** Counts of the last `run`, for reports and tests. */
export interface CompressionStats {
  saves: number;
  /** Saves served by an existing packed copy. */
  dedupHits: number;
  /** Saves per encoding name. */
  byEncoding: Record<string, number>;
}

/**
 * A compression session: a policy plus a step counter (the rounding noise is keyed by seed, step
 * and the save's ordinal within the step, so equal seeds give bit-identical training).
 */
export class Compression {
  readonly policy: ActPolicy;
  /** Incremented after every `run`. */
  step: number;
  private ordinal = 0;
  private readonly cache = new Map<string, Entry>();
  private stats: CompressionStats = { saves: 0, dedupHits: 0, byEncoding: {} };
  /** The saved-tensor hooks this session installs (for composing with other hooks). */
  readonly hooks: SavedTensorHooks<Handle>;
  /** Mode 'auto': the per-save allocation (GACT). */
  readonly auto: AutoPrecision | null;
  /** Mode 'mesa': running (lo, hi) per head, per save key. */
  private readonly mesaRanges = new Map<string, number[]>();
  private measured = false;
  private readonly model: Module | null;
  /** Mode 'auto': this step's stored views (storage, version, view, row grouping) -> the tensor's record key. */
  private readonly views = new Map<string, string>();
  /** During a calibration pass: the tensor probed, and its packed probe copy (shared by its consumers). */
  private probing: { save: AutoSave | null; packed: PackedTensor | null } | null = null;
  /** This step's calibration has run (the caller's own backward measures nothing more). */
  private calibrated = false;

  constructor(config: ActMode | ActConfig, step = 0) {
    this.policy = new ActPolicy(config);
    this.step = step;
    const c = typeof config === 'string' ? { mode: config } : config;
    this.auto = this.policy.mode === 'auto' ? new AutoPrecision(c.autoBits ?? 4, c.autoInterval, c.autoCalibrate) : null;
    this.model = c.model ?? null;
    this.hooks = {
      pack: (t, info) => this.pack(t, info),
      unpack: (h) => this.unpack(h),
      packedBytes: (h) => h.bytes,
      release: (h) => this.release(h),
      observe: (h, _info, grads) => {
        // Calibration probes re-run backward: only the reference pass measures.
        if (!h.measure || this.calibrated || (this.probing && this.probing.save !== null)) return;
        let e = 0;
        for (const g of grads) {
          if (!g) continue;
          const v = g.isContiguous() ? g.data() : g.values();
          for (let i = 0; i < v.length; i++) e += (v[i] as number) * (v[i] as number);
        }
        h.measure.gradEnergy += e;
        this.measured = true;
      },
    };
  }

  /**
   * Mode 'auto': the current allocation (bits per controlled save, in save order) and its
   * element-weighted mean; null in other modes.
   */
  allocation(): { meanBits: number; saves: ReturnType<AutoPrecision['report']> } | null {
    return this.auto && { meanBits: this.auto.meanBits(), saves: this.auto.report() };
  }

  get mode(): ActMode {
    return this.policy.mode;
  }

  /**
   * Runs `fn` (typically forward + loss) with its saves compressed; then advances the step. On an
   * 'auto' calibration step (with `model` given) the controlled saves are kept exact and, when
   * `fn` returns the scalar loss, the sensitivity probes run here, before the caller's backward.
   */
  run<T>(fn: () => T): T {
    // An estimation step's backward has run: allocate from its measurements.
    if (this.auto && this.measured) {
      this.auto.reallocate();
      this.measured = false;
    }
    this.ordinal = 0;
    this.views.clear();
    this.probes.clear();
    this.calibrated = false;
    this.stats = { saves: 0, dedupHits: 0, byEncoding: {} };
    try {
      if (this.policy.isOff) return fn();
      const out = withSavedTensorHooks(this.hooks, fn);
      if (this.calibratingNow()) this.calibrate(out);
      return out;
    } finally {
      this.step++;
    }
  }

  /** True on an 'auto' calibration step that can probe (the model's parameters are known). */
  private calibratingNow(): boolean {
    return this.auto !== null && this.model !== null && this.auto.calibrating(this.step);
  }

  /**
   * Calibration (act.md §14 lesson 5): the controlled saves of this step were kept exact. Backward
   * runs once for reference and once per controlled tensor with only that tensor quantized at
   * PROBE_BITS (its consumers sharing one quantized copy, as they share one packed copy in
   * training); κ_t = ‖g_t − g‖² / E_t(PROBE_BITS). The graph is retained for the caller's own
   * backward, which then trains this step on exact saves.
   */
  private calibrate(loss: unknown): void {
    if (!(loss instanceof Tensor) || !loss.requiresGrad || loss.size !== 1) return; // not a loss: the proxy stands
    const params = this.model!.parameters().filter((p) => p.requiresGrad);
    const pass = (save: AutoSave | null): Float32Array[] => {
      this.probing = { save, packed: null };
      try {
        const gs = grad(loss, params, { retainGraph: true, allowUnused: true });
        return gs.map((g, i) => {
          const v = g ? Float32Array.from(g.data() as Float32Array) : new Float32Array(params[i]!.size);
          g?.dispose();
          return v;
        });
      } finally {
        if (this.probing.packed) releasePacked(this.probing.packed);
        this.probing = null;
      }
    };
    const ref = pass(null);
    const k = [1, 2, 4, 8].indexOf(PROBE_BITS);
    for (const save of this.auto!.saves.values()) {
      if (!this.probes.has(save)) continue;
      const g = pass(save);
      let err = 0;
      g.forEach((v, i) => {
        const r = ref[i]!;
        for (let j = 0; j < v.length; j++) err += (v[j]! - r[j]!) ** 2;
      });
      save.probeError = err;
      save.kappa = save.noise[k]! > 0 ? err / save.noise[k]! : 0;
      save.kappaGradEnergy = save.gradEnergy;
    }
    this.calibrated = true;
  }

  /** Tensors kept exact for probing on this calibration step. */
  private readonly probes = new Set<AutoSave>();

  private unpack(h: Handle): Tensor {
    const p = this.probing;
    if (!h.probe || !p || p.save !== h.measure) return unpackTensor(h.entry.packed);
    // The probed tensor: one stochastic quantization shared by its consumers for this pass.
    if (!p.packed) {
      const exact = unpackTensor(h.entry.packed);
      p.packed = packTensor(exact, h.probe, { seed: this.policy.seed, step: this.step, stream: 1 << 20 });
      exact.dispose();
    }
    return unpackTensor(p.packed);
  }

  /** Counts from the last `run`. */
  lastStats(): CompressionStats {
    return { ...this.stats, byEncoding: { ...this.stats.byEncoding } };
  }

  /** Packed copies alive now (shared by their consumers). */
  get liveEntries(): number {
    return this.cache.size;
  }

  private pack(t: Tensor, info: SaveInfo): Handle {
    const ordinal = this.ordinal++;
    // Saves are identified across steps by their place in the step (the model runs the same ops
    // each step); 'auto' allocates per stored view, keyed by its first consumer's save.
    const saveKey = `${ordinal}:${info.module}:${info.op}:${info.name}`;
    const viewKey = `${info.storageId}:${info.version}:${t.offset}:${t.shape.join('x')}:${t.strides.join(',')}:${info.group ?? ''}`;
    const tensorKey = this.views.get(viewKey) ?? saveKey;
    const resolved = this.policy.resolveWith(contextOf(info, t), this.auto?.bitsFor(tensorKey));
    let encoding = resolved.encoding;
    let measure: AutoSave | undefined;
    let probe: Handle['probe'];
    if (this.auto && resolved.auto) {
      const first = tensorKey === saveKey;
      let rec: AutoSave;
      if (first) {
        this.views.set(viewKey, saveKey);
        rec = this.auto.record(saveKey, info.module, info.op, info.name, t.size, t.shape[0] ?? 1);
      } else {
        rec = this.auto.saves.get(tensorKey)!;
        rec.consumers.push(`${info.op}:${info.name}`);
      }
      if (this.auto.estimating(this.step)) {
        if (first) {
          const quant = encoding as Extract<Encoding, { kind: 'quant' }>;
          rec.noise = quantNoiseEnergy(t, quant, [1, 2, 4, 8]);
          rec.gradEnergy = 0;
        }
        measure = rec;
      }
      if (this.calibratingNow()) {
        probe = { ...(encoding as Extract<Encoding, { kind: 'quant' }>), bits: PROBE_BITS };
        encoding = { kind: 'keep' };
        this.probes.add(rec);
      }
    }
    if (encoding.kind === 'mesa') encoding = { kind: 'mesa', ranges: this.mesaRange(saveKey, t) };
    const name = encodingName(encoding);
    this.stats.saves++;
    this.stats.byEncoding[name] = (this.stats.byEncoding[name] ?? 0) + 1;
    if (encoding.kind === 'keep') return { ...this.keepSave(t, info, encoding), measure, probe };
    const key = this.policy.dedup
      ? `${info.storageId}:${info.version}:${t.offset}:${t.shape.join('x')}:${t.strides.join(',')}:${name}`
      : `#${this.step}:${ordinal}`;
    const hit = this.cache.get(key);
    if (hit) {
      hit.refs++;
      this.stats.dedupHits++;
      return { entry: hit, bytes: 0, keptStorage: false, measure };
    }
    const packed = packTensor(t, encoding, { seed: this.policy.seed, step: this.step, stream: ordinal });
    const entry: Entry = { key, packed, refs: 1 };
    this.cache.set(key, entry);
    return { entry, bytes: packed.bytes, keptStorage: false, measure };
  }

  /**
   * Mesa's per-head range for this save: running estimates α ← λα + (1 − λ)r, β ← λβ + (1 − λ)m
   * of the batch range r and minimum m; widened to this batch's range where it lags, so no value
   * is clamped (Mesa's uint8 wrap-around and bias defects, act.md §6.1).
   */
  private mesaRange(key: string, t: Tensor): number[] {
    const heads = mesaHeads(t.shape), batch = mesaBatchRanges(t);
    let run = this.mesaRanges.get(key); // (β, α) per head
    if (!run) this.mesaRanges.set(key, (run = batch.map((x, i) => (i % 2 ? x - batch[i - 1]! : x))));
    const out: number[] = [];
    for (let h = 0; h < 2 * heads; h += 2) {
      const m = batch[h]!, r = batch[h + 1]! - m;
      run[h] = MESA_DECAY * run[h]! + (1 - MESA_DECAY) * m;
      run[h + 1] = MESA_DECAY * run[h + 1]! + (1 - MESA_DECAY) * r;
      out.push(Math.min(run[h]!, m), Math.max(run[h]! + run[h + 1]!, m + r));
    }
    return out;
  }

  /** Keeps a reference, booking the storage as 'saved' once however many slots share it (as without hooks). */
  private keepSave(t: Tensor, info: SaveInfo, encoding: Encoding): Handle {
    const packed = packTensor(t, encoding, null);
    const bytes = bookSaved(t, info.isParameter);
    return { entry: { key: '', packed, refs: 1 }, bytes, keptStorage: !info.isParameter };
  }

  private release(h: Handle): void {
    const { entry } = h;
    if (h.keptStorage) unbookSaved(entry.packed.kept!.storage, false);
    if (--entry.refs > 0) return;
    releasePacked(entry.packed);
    if (entry.key) this.cache.delete(entry.key);
  }
}

/**
 * Runs `fn` with every value saved for backward compressed by `config` (a mode, a config or a
 * reusable `Compression` session). Mode 'off' runs `fn` untouched. A mode or config gets a fresh
 * session at step 0 each call: training loops should create one `Compression` and pass it, so
 * that the rounding noise changes from step to step.
 *
 * @example
 * const loss = withCompression('int4', () => crossEntropy(model.call(x), y));
 * backward(loss);
 */
export function withCompression<T>(config: ActMode | ActConfig | Compression, fn: () => T): T {
  const session = config instanceof Compression ? config : new Compression(config);
  return session.run(fn);
}

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
import { bookSaved, unbookSaved, withSavedTensorHooks, type SaveInfo, type SavedTensorHooks } from '../autograd/saved.js';
import type { Tensor } from '../core/tensor.js';
import { encodingName, packTensor, releasePacked, unpackTensor, type Encoding, type PackedTensor } from './codecs.js';
import { ActPolicy, contextOf, type ActConfig, type ActMode } from './policy.js';

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

  constructor(config: ActMode | ActConfig, step = 0) {
    this.policy = new ActPolicy(config);
    this.step = step;
    this.hooks = {
      pack: (t, info) => this.pack(t, info),
      unpack: (h) => unpackTensor(h.entry.packed),
      packedBytes: (h) => h.bytes,
      release: (h) => this.release(h),
    };
  }

  get mode(): ActMode {
    return this.policy.mode;
  }

  /** Runs `fn` (typically forward + loss) with its saves compressed; then advances the step. */
  run<T>(fn: () => T): T {
    this.ordinal = 0;
    this.stats = { saves: 0, dedupHits: 0, byEncoding: {} };
    try {
      return this.policy.isOff ? fn() : withSavedTensorHooks(this.hooks, fn);
    } finally {
      this.step++;
    }
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
    const encoding = this.policy.resolve(contextOf(info, t));
    const name = encodingName(encoding);
    const ordinal = this.ordinal++;
    this.stats.saves++;
    this.stats.byEncoding[name] = (this.stats.byEncoding[name] ?? 0) + 1;
    if (encoding.kind === 'keep') return this.keepSave(t, info, encoding);
    const key = this.policy.dedup
      ? `${info.storageId}:${info.version}:${t.offset}:${t.shape.join('x')}:${t.strides.join(',')}:${name}`
      : `#${this.step}:${ordinal}`;
    const hit = this.cache.get(key);
    if (hit) {
      hit.refs++;
      this.stats.dedupHits++;
      return { entry: hit, bytes: 0, keptStorage: false };
    }
    const packed = packTensor(t, encoding, { seed: this.policy.seed, step: this.step, stream: ordinal });
    const entry: Entry = { key, packed, refs: 1 };
    this.cache.set(key, entry);
    return { entry, bytes: packed.bytes, keptStorage: false };
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

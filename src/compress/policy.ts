/**
 * Save policies: which encoding each value saved for backward gets (act.md §10). A policy maps
 * the save's context (op, role, module path, shape, dtype) to an `Encoding`:
 *
 * - parameters are never compressed; 'stats' (norm mean / inverse std) stay float32;
 * - 'mask' roles are stored at 1 bit, 'index' roles bit-packed;
 * - tensors under `minElements` and non-float values in other roles are kept;
 * - saves their op declares exact (SaveSpec.exact: a loss's probabilities) are kept;
 * - the network input (a saved tensor that no op produced and that needs no gradient: the first
 *   conv/linear input) and the last linear layer's input get at least 8 bits;
 * - every other float value gets the mode's encoding; `layers` (module path, exact or prefix) and
 *   `ops` (op name) override it;
 * - saves declared with row groups (SaveSpec.group: LayerNorm's input) are grouped per row when
 *   rows are shorter than the group size.
 * No op is recognized by name: the hints come from the ops' declared saves.
 */
import type { SaveInfo, SaveRole } from '../autograd/saved.js';
import { isFloat, type DType } from '../core/dtype.js';
import type { Module } from '../nn/module.js';
import { Linear } from '../nn/layers.js';
import { validateEncoding, type Encoding } from './codecs.js';

export const ACT_MODES = ['off', 'fp16', 'int8', 'int4', 'int2', 'division', 'auto', 'mesa', 'comet'] as const;
export type ActMode = (typeof ACT_MODES)[number];

/**
 * A mode as the CLI spells it: a mode name, `auto:B` (GACT auto precision at B average bits,
 * 1 <= B <= 8) or `comet:EB` (error bound EB relative to each tensor's value range, 0 < EB < 1).
 *
 * @example
 * parseActSpec('auto:2'); // { mode: 'auto', autoBits: 2 }
 */
export function parseActSpec(spec: string, where = 'withCompression'): Pick<ActConfig, 'mode' | 'autoBits' | 'cometBound'> {
  const [name, arg, ...rest] = spec.split(':');
  const mode = parseMode(name, where);
  if (arg === undefined) return { mode };
  const v = Number(arg);
  if (rest.length === 0 && mode === 'auto' && arg !== '' && v >= 1 && v <= 8) return { mode, autoBits: v };
  if (rest.length === 0 && mode === 'comet' && arg !== '' && v > 0 && v < 1) return { mode, cometBound: v };
  throw new RangeError(`${where}: bad mode ${JSON.stringify(spec)} (auto:B takes average bits 1..8, comet:EB a relative error bound in (0, 1); other modes take no argument)`);
}

export interface ActConfig {
  mode: ActMode;
  /** Elements per quantization group, within one sample (default 256). */
  groupSize?: number;
  /** Precision of per-group (min, step) metadata (default 'fp16': 32/groupSize bits per element). */
  metadata?: 'fp16' | 'fp32';
  /** Stochastic rounding (default) or round to nearest. */
  stochastic?: boolean;
  /** Seed of the rounding noise (default 0). */
  seed?: number;
  /** DIVISION block size P (default 8) and HFC bits (default 2). */
  divisionBlock?: number;
  hfcBits?: 1 | 2 | 4 | 8;
  /** Bits for float saves DIVISION does not cover (not [N, C, H, W] maps; default 8). */
  divisionFallbackBits?: 1 | 2 | 4 | 8;
  /** Saves smaller than this many elements are kept as they are (default 1024). */
  minElements?: number;
  /** Minimum bits for the network input and the last linear layer's input (default 8). */
  edgeBits?: 1 | 2 | 4 | 8;
  /** Module path of the last linear layer; found from `model` when omitted. */
  lastLayer?: string;
  /** The model, used to find the last linear layer. */
  model?: Module;
  /** Per-layer overrides: module path (exact, or a prefix ending at a '.') -> mode or encoding. */
  layers?: Record<string, ActMode | Encoding>;
  /** Per-op overrides: op name -> mode or encoding. */
  ops?: Record<string, ActMode | Encoding>;
  /** One packed copy per (storage, version, view, encoding) (default true). */
  dedup?: boolean;
  /** Mode 'auto': average bits (default 4) and steps between sensitivity estimates (default 100). */
  autoBits?: number;
  autoInterval?: number;
  /**
   * Mode 'auto': every how many estimations one calibrates the sensitivities by probing (one
   * extra backward per controlled tensor, needs `model`; the first estimation always does);
   * 0 = never, the analytic proxy alone (default 3: with the default interval, steps 0, 300, 600, ...).
   */
  autoCalibrate?: number;
  /** Mode 'comet': error bound relative to each tensor's value range (default 0.05). */
  cometBound?: number;
}

const CONFIG_KEYS = new Set(['mode', 'groupSize', 'metadata', 'stochastic', 'seed', 'divisionBlock', 'hfcBits', 'divisionFallbackBits', 'minElements', 'edgeBits', 'lastLayer', 'model', 'layers', 'ops', 'dedup', 'autoBits', 'autoInterval', 'autoCalibrate', 'cometBound']);

/** What the policy looks at for one save. */
export interface SaveContext {
  readonly op: string;
  readonly role: SaveRole;
  /** The op's hints for this save (SaveSpec): never lossy; groups within last-axis rows. */
  readonly exact: boolean;
  readonly group: 'row' | undefined;
  readonly module: string;
  readonly isParameter: boolean;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** True for a tensor no op produced and that needs no gradient (the data batch). */
  readonly isNetworkInput: boolean;
}

export function contextOf(info: SaveInfo, t: { shape: readonly number[]; dtype: DType; gradFn: unknown; requiresGrad: boolean }): SaveContext {
  return {
    op: info.op, role: info.role, exact: info.exact, group: info.group, module: info.module, isParameter: info.isParameter,
    shape: t.shape, dtype: t.dtype,
    // An op's own outputs are saved before autograd marks them, so only 'input' roles qualify.
    isNetworkInput: info.role === 'input' && !info.isParameter && t.gradFn === null && !t.requiresGrad,
  };
}

const KEEP: Encoding = { kind: 'keep' };
const MASK: Encoding = { kind: 'mask' };
const INDEX: Encoding = { kind: 'index' };

export function parseMode(mode: unknown, where = 'withCompression'): ActMode {
  if (typeof mode !== 'string' || !(ACT_MODES as readonly string[]).includes(mode)) {
    throw new RangeError(`${where}: unknown mode ${JSON.stringify(mode)} (expected one of ${ACT_MODES.join(', ')})`);
  }
  return mode as ActMode;
}

function positiveInt(v: unknown, name: string): number {
  if (!Number.isInteger(v) || (v as number) < 1) throw new RangeError(`withCompression: ${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function bitsOption(v: unknown, name: string): 1 | 2 | 4 | 8 {
  if (v !== 1 && v !== 2 && v !== 4 && v !== 8) throw new RangeError(`withCompression: ${name} must be 1, 2, 4 or 8, got ${JSON.stringify(v)}`);
  return v;
}

/** The path of the last Linear module in registration order ('' if none). */
export function lastLinearPath(model: Module): string {
  let last = '';
  for (const [, m] of model.namedModules()) if (m instanceof Linear) last = m.path;
  return last;
}

export class ActPolicy {
  readonly mode: ActMode;
  readonly dedup: boolean;
  readonly seed: number;
  private readonly groupSize: number;
  private readonly stochastic: boolean;
  private readonly metadata: 'fp16' | 'fp32';
  private readonly minElements: number;
  private readonly edgeBits: 1 | 2 | 4 | 8;
  private readonly division: Encoding;
  private readonly divisionFallback: Encoding;
  private readonly lastLayer: string;
  private readonly layers: [string, Encoding][];
  private readonly ops: Map<string, Encoding>;
  private readonly cometBound: number;

  constructor(config: ActMode | ActConfig) {
    const c: ActConfig = typeof config === 'string' ? { mode: parseMode(config) } : config;
    if (typeof c !== 'object' || c === null) throw new TypeError(`withCompression: expected a mode or a config object, got ${String(config)}`);
    for (const k of Object.keys(c)) if (!CONFIG_KEYS.has(k)) throw new RangeError(`withCompression: unknown option '${k}' (known: ${[...CONFIG_KEYS].join(', ')})`);
    this.mode = parseMode(c.mode);
    this.groupSize = positiveInt(c.groupSize ?? 256, 'groupSize');
    this.minElements = c.minElements === 0 ? 0 : positiveInt(c.minElements ?? 1024, 'minElements');
    this.metadata = c.metadata ?? 'fp16';
    if (this.metadata !== 'fp16' && this.metadata !== 'fp32') throw new RangeError(`withCompression: metadata must be 'fp16' or 'fp32', got ${JSON.stringify(c.metadata)}`);
    this.stochastic = c.stochastic ?? true;
    if (typeof this.stochastic !== 'boolean') throw new TypeError(`withCompression: stochastic must be true or false`);
    this.seed = c.seed ?? 0;
    if (!Number.isInteger(this.seed)) throw new RangeError(`withCompression: seed must be an integer, got ${c.seed}`);
    this.edgeBits = bitsOption(c.edgeBits ?? 8, 'edgeBits');
    this.division = { kind: 'division', block: positiveInt(c.divisionBlock ?? 8, 'divisionBlock'), hfcBits: bitsOption(c.hfcBits ?? 2, 'hfcBits'), metadata: this.metadata };
    this.divisionFallback = this.quant(bitsOption(c.divisionFallbackBits ?? 8, 'divisionFallbackBits'));
    this.lastLayer = c.lastLayer ?? (c.model ? lastLinearPath(c.model) : '');
    this.dedup = c.dedup ?? true;
    this.cometBound = c.cometBound ?? 0.05;
    if (!(this.cometBound > 0 && this.cometBound < 1)) throw new RangeError(`withCompression: cometBound must be in (0, 1), got ${c.cometBound}`);
    const toEncoding = (v: ActMode | Encoding, where: string): Encoding => {
      if (typeof v === 'string') return this.modeEncoding(parseMode(v, where));
      validateEncoding(v, where);
      return v;
    };
    this.layers = Object.entries(c.layers ?? {}).map(([path, v]) => [path, toEncoding(v, `withCompression: layers['${path}']`)]);
    this.layers.sort((a, b) => b[0].length - a[0].length); // most specific path first
    this.ops = new Map(Object.entries(c.ops ?? {}).map(([op, v]) => [op, toEncoding(v, `withCompression: ops['${op}']`)]));
  }

  /** True when no save is ever changed (the hooks can be skipped entirely). */
  get isOff(): boolean {
    return this.mode === 'off' && this.layers.length === 0 && this.ops.size === 0;
  }

  private quant(bits: 1 | 2 | 4 | 8): Encoding {
    return { kind: 'quant', bits, groupSize: this.groupSize, stochastic: this.stochastic, metadata: this.metadata };
  }

  /** The encoding a mode gives an ordinary float save (DIVISION: for 4-D maps; auto: at `autoBits`). */
  private modeEncoding(mode: ActMode, autoBits: 1 | 2 | 4 | 8 = 4): Encoding {
    switch (mode) {
      case 'auto': return this.quant(autoBits);
      case 'mesa': return { kind: 'mesa', ranges: [] };
      case 'comet': return { kind: 'comet', bound: this.cometBound };
      case 'off': return KEEP;
      case 'fp16': return { kind: 'fp16' };
      case 'int8': return this.quant(8);
      case 'int4': return this.quant(4);
      case 'int2': return this.quant(2);
      case 'division': return this.division;
    }
  }

  /** Raises a quantized encoding to at least `bits`. */
  private atLeast(e: Encoding, bits: 1 | 2 | 4 | 8): Encoding {
    if (e.kind === 'quant' && e.bits < bits) return this.quant(bits);
    if (e.kind === 'division') return this.quant(bits);
    return e;
  }

  private override(s: SaveContext): Encoding | undefined {
    for (const [path, e] of this.layers) {
      if (s.module === path || s.module.startsWith(`${path}.`)) return e;
    }
    return this.ops.get(s.op);
  }

  /** The encoding for one save. */
  resolve(s: SaveContext): Encoding {
    return this.resolveWith(s).encoding;
  }

  /**
   * The encoding for one save with the bits an 'auto' session allocated to it; `auto` is true
   * when the save's bits are the mode's to choose (not kept, overridden or raised at an edge).
   */
  resolveWith(s: SaveContext, autoBits?: 1 | 2 | 4 | 8): { encoding: Encoding; auto: boolean } {
    const fixed = (encoding: Encoding) => ({ encoding, auto: false });
    if (s.isParameter || s.role === 'stats') return fixed(KEEP);
    const size = s.shape.reduce((a, b) => a * b, 1);
    if (s.role === 'mask') return fixed(this.mode === 'off' && !this.override(s) ? KEEP : MASK);
    if (s.role === 'index') return fixed(this.mode === 'off' && !this.override(s) ? KEEP : INDEX);
    if (!isFloat(s.dtype) || s.exact) return fixed(KEEP);
    const override = this.override(s);
    let e = override ?? this.modeEncoding(this.mode, autoBits);
    if (e.kind === 'mask' || e.kind === 'index') return fixed(KEEP); // not meaningful for float values
    if (size < this.minElements) return fixed(KEEP);
    if (e.kind === 'division' && !(s.shape.length === 4 && s.shape[2]! > 1)) e = this.divisionFallback;
    // The last linear layer's only non-parameter save is its input.
    const edge = s.isNetworkInput || (this.lastLayer !== '' && s.module === this.lastLayer && s.role === 'input');
    if (edge) e = this.atLeast(e, this.edgeBits);
    const row = s.shape[s.shape.length - 1] ?? 1;
    if (s.group === 'row' && e.kind === 'quant' && row < e.groupSize) e = { ...e, groupSize: row };
    return { encoding: e, auto: this.mode === 'auto' && !override && !edge };
  }
}

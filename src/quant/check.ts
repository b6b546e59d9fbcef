/**
 * Structural check of a deployed model against its own layer shapes: every stage's fields, the
 * kind and length of every array it holds (weights for its kernel and shape, one epilogue value
 * per output channel), and the activation shape flowing from the input through every stage,
 * residual blocks included (body and shortcut must produce the same shape). The decoder runs it on
 * array descriptors before any array is built, so a hostile file is refused with the field at
 * fault before it costs memory; `encodeDeployed` runs it too, so a bad conversion never reaches a
 * file. Pure (no tensors), so the browser shares it.
 *
 * @example
 * checkDeployed(model);   // throws 'stages[3].weights: ...' naming the field and the shapes
 */
import { wordsFor } from './kernels.js';
import type { Stage } from './runtime.js';

/** An array of a file as the check sees it before the array is read (a typed array's kind and length). */
export class ArrayInfo {
  constructor(readonly kind: 'u32' | 'i32' | 'i8' | 'f32', readonly length: number) {}
}

/** Largest activation of one item (elements) a deployed model may produce: 64 Mi floats. */
export const MAX_ITEM_ELEMENTS = 1 << 26;
/** Deepest nesting of residual blocks accepted. */
export const MAX_DEPTH = 4;
const KERNELS = ['binary', 'binary_weights', 'ternary_weights', 'int8', 'float', 'nested_weights', 'smartdeal'] as const;

export class DeployedModelError extends Error {
  constructor(readonly field: string, why: string) {
    super(`${field}: ${why}`);
  }
}

function arrayInfo(v: unknown): ArrayInfo | null {
  if (v instanceof Uint32Array) return new ArrayInfo('u32', v.length);
  if (v instanceof Int32Array) return new ArrayInfo('i32', v.length);
  if (v instanceof Int8Array) return new ArrayInfo('i8', v.length);
  if (v instanceof Float32Array) return new ArrayInfo('f32', v.length);
  return v instanceof ArrayInfo ? v : null;
}

/**
 * Checks `stages` on items of `inputShape`; returns the output shape per item. Arrays may be typed
 * arrays or `ArrayInfo` descriptors (values are checked only on typed arrays). Throws a DeployedModelError naming the field.
 */
export function checkStages(inputShape: readonly number[], stages: readonly unknown[], at = 'stages', depth = 0): number[] {
  const fail = (field: string, why: string): never => {
    throw new DeployedModelError(field, why);
  };
  if (depth > MAX_DEPTH) fail(at, `residual blocks nested deeper than ${MAX_DEPTH}`);
  let shape = [...inputShape];
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  stages.forEach((raw, i) => {
    const field = `${at}[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(field, 'expected an object');
    const s = raw as Record<string, unknown>;
    const int = (key: string, min: number, max = 2 ** 31 - 1): number => {
      const v = s[key];
      if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) fail(`${field}.${key}`, `expected an integer in [${min}, ${max}], got ${JSON.stringify(v) ?? 'nothing'}`);
      return v as number;
    };
    const array = (key: string, kinds: ArrayInfo['kind'][], length: number, optional = false): ArrayInfo | null => {
      if (s[key] === undefined && optional) return null;
      const a = arrayInfo(s[key]);
      if (!a) return fail(`${field}.${key}`, `expected an array of ${kinds.join(' or ')} values`);
      if (!kinds.includes(a.kind)) fail(`${field}.${key}`, `expected ${kinds.join(' or ')} values, got ${a.kind}`);
      if (a.length !== length) fail(`${field}.${key}`, `expected ${length} values for the stage's shape, got ${a.length}`);
      return a;
    };
    const image = (what: string): [number, number, number] => {
      if (shape.length !== 3) fail(field, `${what} expects image items [C, H, W], gets [${shape}]`);
      return shape as [number, number, number];
    };
    switch (s.op) {
      case 'conv':
      case 'dense': {
        const kernel = s.kernel as string;
        if (!(KERNELS as readonly string[]).includes(kernel)) fail(`${field}.kernel`, `expected one of ${KERNELS.join(', ')}, got ${JSON.stringify(kernel)}`);
        const outC = int('outC', 1), inC = int('inC', 1);
        let k = 1;
        if (s.op === 'conv') {
          const [c, h, w] = image('a conv stage');
          k = int('k', 1, 64);
          const stride = int('stride', 1, 64), pad = int('pad', 0, k - 1);
          if (c !== inC) fail(`${field}.inC`, `${inC} input channels, but the stage receives [${shape}]`);
          const oh = Math.floor((h + 2 * pad - k) / stride) + 1, ow = Math.floor((w + 2 * pad - k) / stride) + 1;
          if (oh < 1 || ow < 1) fail(`${field}.k`, `a ${k}x${k} kernel (padding ${pad}) does not fit the ${h}x${w} input`);
          shape = [outC, oh, ow];
        } else {
          if (shape.length !== 1 || shape[0] !== inC) fail(`${field}.inC`, `a dense stage of ${inC} inputs receives [${shape}] (flatten first)`);
          shape = [outC];
        }
        if (size(shape) > MAX_ITEM_ELEMENTS) fail(`${field}.outC`, `${size(shape)} output values per item exceed ${MAX_ITEM_ELEMENTS}`);
        const K = inC * k * k;
        if (outC * K > MAX_ITEM_ELEMENTS * 4) fail(`${field}.outC`, `${outC}x${K} weights are more than any file holds`);
        const weightKinds: Record<string, [ArrayInfo['kind'], number]> = {
          binary: ['u32', s.op === 'conv' ? outC * k * k * wordsFor(inC) : outC * wordsFor(inC)],
          binary_weights: ['u32', outC * wordsFor(K)],
          ternary_weights: ['u32', outC * 2 * wordsFor(K)],
          int8: ['i8', outC * K],
          float: ['f32', outC * K],
          nested_weights: ['i8', outC * K],
        };
        if (kernel === 'smartdeal') {
          // Factors (codes of the kept rows, row mask, basis): checked against the shape when they are unpacked (smartdeal.ts).
        } else if (s.mask !== undefined) {
          // Sparse encoding (sparse.ts): a bitmap of the non-zeros, then only their values (float) or
          // signs (ternary), whose count the sparse decoder checks against the bitmap.
          if (kernel !== 'float' && kernel !== 'ternary_weights') fail(`${field}.mask`, `a sparse encoding is defined for float and ternary_weights stages, not ${kernel}`);
          array('mask', ['u32'], wordsFor(outC * K));
        } else {
          const [wk, wl] = weightKinds[kernel]!;
          array('weights', [wk], wl);
        }
        if (kernel === 'int8') {
          const step = s.inputStep;
          if (typeof step !== 'number' || !(step > 0) || !Number.isFinite(step)) fail(`${field}.inputStep`, `expected a positive step, got ${JSON.stringify(step)}`);
          const range = s.inputRange;
          if (range !== undefined && !(Array.isArray(range) && range.length === 2 && range.every((v) => Number.isInteger(v) && v >= -128 && v <= 127) && range[0] <= range[1])) {
            fail(`${field}.inputRange`, `expected [lo, hi] within [-128, 127], got ${JSON.stringify(range)}`);
          }
          if (s.inputBorder !== undefined) {
            const [lo, hi] = (range as [number, number] | undefined) ?? [-128, 127], n = arrayInfo(s.inputBorder)?.length;
            array('inputBorder', ['f32'], n === inC * (hi - lo) && hi > lo ? n : inC);
          }
        }
        if (s.inputQuantizer !== undefined) {
          const q = s.inputQuantizer as Record<string, unknown> | null;
          if (kernel !== 'float' || typeof q !== 'object' || q === null || typeof q.name !== 'string') fail(`${field}.inputQuantizer`, 'expected a quantizer config {name, ...} on a float stage');
        }
        if (s.levels !== undefined) {
          const l = s.levels;
          if (kernel !== 'binary' && kernel !== 'binary_weights') fail(`${field}.levels`, `weight levels are defined for binary and binary_weights stages, not ${kernel}`);
          if (!(Array.isArray(l) && l.length === 2 && l.every((v) => typeof v === 'number' && Number.isFinite(v)))) fail(`${field}.levels`, `expected two finite weight values [alpha, beta], got ${JSON.stringify(l)?.slice(0, 80)}`);
        }
        if (s.threshold !== undefined || s.direction !== undefined) {
          array('threshold', (kernel === 'binary' && s.levels === undefined) || kernel === 'int8' ? ['i32'] : ['f32'], outC);
          array('direction', ['i8'], outC);
          if (s.mul !== undefined || s.bias !== undefined) fail(`${field}.mul`, 'a stage with sign thresholds has no mul/bias epilogue');
          const d = s.direction;
          if (d instanceof Int8Array && d.some((v) => v < -1 || v > 1)) fail(`${field}.direction`, 'expected values -1, 0 or 1');
        } else {
          array('mul', ['f32'], outC);
          array('bias', ['f32'], outC);
        }
        break;
      }
      case 'maxpool': {
        const [c, h, w] = image('a maxpool stage');
        const k = int('k', 1, Math.min(h, w));
        shape = [c, Math.floor(h / k), Math.floor(w / k)];
        break;
      }
      case 'gap': {
        const [c] = image('a global average pool stage');
        shape = [c];
        break;
      }
      case 'relu':
        break;
      case 'flatten':
        shape = [size(shape)];
        break;
      case 'affine':
        if (shape.length < 1) fail(field, 'an affine stage needs a channel axis');
        array('mul', ['f32'], shape[0]!);
        array('bias', ['f32'], shape[0]!);
        break;
      case 'residual': {
        for (const key of ['body', 'shortcut']) if (!Array.isArray(s[key])) fail(`${field}.${key}`, 'expected a list of stages');
        if ((s.body as unknown[]).length === 0) fail(`${field}.body`, 'expected at least one stage');
        const body = checkStages(shape, s.body as unknown[], `${field}.body`, depth + 1);
        const shortcut = checkStages(shape, s.shortcut as unknown[], `${field}.shortcut`, depth + 1);
        if (body.join() !== shortcut.join()) fail(field, `the body gives [${body}] but the shortcut [${shortcut}]: they cannot be added`);
        shape = body;
        break;
      }
      default:
        fail(`${field}.op`, `unknown stage ${JSON.stringify(s.op)} (expected conv, dense, maxpool, gap, relu, flatten, affine or residual)`);
    }
  });
  return shape;
}

/** Checks an in-memory deployed model (see checkStages). */
export function checkDeployed(model: { inputShape: readonly number[]; stages: readonly Stage[] }): number[] {
  const { inputShape } = model;
  if (inputShape.length === 0 || !inputShape.every((d) => Number.isInteger(d) && d >= 1) || inputShape.reduce((a, b) => a * b, 1) > MAX_ITEM_ELEMENTS) {
    throw new DeployedModelError('inputShape', `expected positive integers with at most ${MAX_ITEM_ELEMENTS} values per item, got [${inputShape}]`);
  }
  return checkStages(inputShape, model.stages);
}

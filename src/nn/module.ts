/**
 * Modules: a tree of named parameters, buffers and child modules with train/eval mode and a
 * named state dict. Calling a module (`m.call(x)`) runs `forward` with the module's path set as
 * the current module, so every value saved for backward knows which layer saved it.
 */
import { keep } from '../core/scope.js';
import { fromValues, Tensor } from '../core/tensor.js';
import { withModulePath } from '../autograd/saved.js';
import { Rng } from '../util/rng.js';
import type { Category } from '../core/ledger.js';

let parameterDType: 'float32' | 'float64' = 'float32';

/**
 * Builds modules whose parameters are `dtype` (float64 modules run on the reference backend;
 * used for gradient checks of whole layers).
 */
export function withParameterDType<T>(dtype: 'float32' | 'float64', fn: () => T): T {
  const prev = parameterDType;
  parameterDType = dtype;
  try {
    return fn();
  } finally {
    parameterDType = prev;
  }
}

/** A trainable tensor: stored in 'parameter' memory, requires grad, never disposed by scopes. */
export function parameter(values: ArrayLike<number>, shape: number[], name = ''): Tensor {
  const t = keep(fromValues(values, shape, parameterDType, 'parameter'));
  t.requiresGrad = true;
  t.name = name;
  return t;
}

/** A non-trainable state tensor (e.g. batch-norm running statistics). */
export function buffer(values: ArrayLike<number>, shape: number[], category: Category = 'parameter'): Tensor {
  return keep(fromValues(values, shape, parameterDType, category));
}

/** Initializers, all from the counter-based generator so that a seed fixes every weight. */
export const init = {
  /** Kaiming/He uniform for ReLU nets: U(-b, b), b = sqrt(6 / fanIn). */
  kaimingUniform(rng: Rng, n: number, fanIn: number): Float32Array {
    const b = Math.sqrt(6 / fanIn);
    return Float32Array.from({ length: n }, () => (rng.uniform() * 2 - 1) * b);
  },
  /** U(-1/sqrt(fanIn), 1/sqrt(fanIn)): PyTorch's default bias init. */
  fanInUniform(rng: Rng, n: number, fanIn: number): Float32Array {
    const b = 1 / Math.sqrt(fanIn);
    return Float32Array.from({ length: n }, () => (rng.uniform() * 2 - 1) * b);
  },
  normal(rng: Rng, n: number, std: number): Float32Array {
    return Float32Array.from({ length: n }, () => rng.normal() * std);
  },
};

export abstract class Module {
  training = true;
  /** Dotted path of this module in its root (set when the tree is built). */
  path = '';
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  abstract forward(...inputs: Tensor[]): Tensor;

  /** Observers of every module call (used by summaries and tracers); see `traceCalls`. */
  static callObservers: ((m: Module, out: Tensor) => void)[] = [];

  /** Runs forward with this module's path recorded on every saved value. */
  call(...inputs: Tensor[]): Tensor {
    const out = withModulePath(this.path, () => this.forward(...inputs));
    for (const o of Module.callObservers) o(this, out);
    return out;
  }

  protected registerParameter(name: string, t: Tensor): Tensor {
    this.params.set(name, t);
    return t;
  }

  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.buffers.set(name, t);
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Call once on the root after construction: assigns every module's path and parameter names. */
  protected finalize(): this {
    this.setPaths('');
    return this;
  }

  private setPaths(prefix: string): void {
    this.path = prefix;
    for (const [n, p] of this.params) p.name = prefix ? `${prefix}.${n}` : n;
    for (const [n, c] of this.children) c.setPaths(prefix ? `${prefix}.${n}` : n);
  }

  /** Every (path, parameter) pair, depth first. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this.params) out.push([prefix + n, p]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, b] of this.buffers) out.push([prefix + n, b]);
    for (const [n, c] of this.children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [n, c] of this.children) out.push(...c.namedModules(`${prefix}${n}.`));
    return out;
  }

  /** Parameters and buffers by name (the tensors themselves, not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** Copies values into this module's tensors; every name and shape must match (strict). */
  loadStateDict(state: Map<string, { shape: readonly number[]; values: ArrayLike<number> }>): void {
    const mine = this.stateDict();
    const missing = [...mine.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !mine.has(k));
    if (missing.length || unexpected.length) {
      throw new Error(`loadStateDict: ${missing.length ? `missing ${missing.join(', ')}` : ''}${missing.length && unexpected.length ? '; ' : ''}${unexpected.length ? `unexpected ${unexpected.join(', ')}` : ''}`);
    }
    for (const [k, t] of mine) {
      const s = state.get(k)!;
      if (s.shape.join() !== t.shape.join()) throw new Error(`loadStateDict: '${k}' has shape [${s.shape}] in the file but [${t.shape}] in the model`);
    }
    for (const [k, t] of mine) {
      t.data().set(state.get(k)!.values);
      t.bumpVersion();
    }
  }

  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Sets every parameter's gradient to null (frees the gradient memory). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const [, t] of this.stateDict()) t.dispose();
  }

  parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }
}

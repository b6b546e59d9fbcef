/**
 * Memory scopes. Every tensor created inside `scope(fn)` is disposed when `fn` returns, except
 * the tensors it returns (walked through arrays and plain objects, never through typed arrays) and
 * those passed to `keep`. Scopes nest; returned tensors move to the enclosing scope.
 */
import type { Tensor } from './tensor.js';

const stack: Set<Tensor>[] = [];

/**
 * Puts a new tensor in the innermost scope. The tensor remembers its scope (`ownerScope`) so that
 * `dispose` takes it out again at once: a scope that only held on to its disposed views until it
 * closes kept thousands of dead tensors reachable through a training step, and V8 promoted every
 * one of them to the old generation.
 */
export function trackTensor(t: Tensor): void {
  const s = stack[stack.length - 1];
  if (s) {
    s.add(t);
    t.ownerScope = s;
  }
}

/** Takes `t` out of its scope (a tensor is in at most one) so that no scope disposes it. Returns `t`. */
export function keep<T extends Tensor>(t: T): T {
  t.ownerScope?.delete(t);
  t.ownerScope = null;
  return t;
}

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 8) return;
  if (ArrayBuffer.isView(value)) return;
  if ((value as { isTensor?: unknown }).isTensor === true) {
    out.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

function close(mine: Set<Tensor>, result: unknown): void {
  const escaping = new Set<Tensor>();
  collect(result, escaping);
  for (const t of mine) if (!escaping.has(t) && !t.disposed) t.dispose();
  const parent = stack[stack.length - 1] ?? null;
  for (const t of escaping) {
    if (!mine.has(t)) continue;
    parent?.add(t);
    t.ownerScope = parent;
  }
}

export function scope<T>(fn: () => T): T {
  const mine = new Set<Tensor>();
  stack.push(mine);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    close(mine, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    stack.pop();
    close(mine, undefined);
    throw new Error('scope: fn returned a Promise; use scopeAsync for async code');
  }
  stack.pop();
  close(mine, result);
  return result;
}

/** Like `scope`, for async functions. Tensors created by other tasks while awaiting are not tracked separately. */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const mine = new Set<Tensor>();
  stack.push(mine);
  try {
    const result = await fn();
    stack.splice(stack.indexOf(mine), 1);
    close(mine, result);
    return result;
  } catch (e) {
    stack.splice(stack.indexOf(mine), 1);
    close(mine, undefined);
    throw e;
  }
}

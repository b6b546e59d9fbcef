/**
 * Memory scopes. Every tensor created inside `scope(fn)` is disposed when `fn` returns, except
 * the tensors it returns (walked through arrays and plain objects, never through typed arrays) and
 * those passed to `keep`. Scopes nest; returned tensors move to the enclosing scope.
 */
import type { Tensor } from './tensor.js';

const stack: Set<Tensor>[] = [];

export function trackTensor(t: Tensor): void {
  stack[stack.length - 1]?.add(t);
}

/** Removes `t` from every scope so that no scope disposes it. Returns `t`. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of stack) s.delete(t);
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
  const parent = stack[stack.length - 1];
  if (parent) for (const t of escaping) if (mine.has(t)) parent.add(t);
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

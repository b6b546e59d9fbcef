/** A layer-by-layer description of a model: output shapes, parameters, saved-for-backward bytes. */
import { memory } from '../core/ledger.js';
import { scope } from '../core/scope.js';
import { Tensor } from '../core/tensor.js';
import { Lambda } from './layers.js';
import { Module } from './module.js';

export interface LayerRow {
  path: string;
  type: string;
  outputShape: number[];
  parameters: number;
  /** Saved-for-backward bytes added while this layer (and its children) ran. */
  savedBytes: number;
}

export interface ModelSummary {
  layers: LayerRow[];
  parameters: number;
  parameterBytes: number;
  /** Saved-for-backward bytes of one forward pass at the given input shape. */
  savedBytes: number;
  inputShape: number[];
}

/** Runs one forward pass on zeros of `inputShape` (with autograd on) and describes every leaf layer. */
export function describe(model: Module, inputShape: number[], dtype: 'float32' | 'int32' = 'float32'): ModelSummary {
  const rows: LayerRow[] = [];
  const leaves = new Set(model.namedModules().filter(([, m]) => m.namedModules().length === 1).map(([, m]) => m));
  let lastSaved = 0;
  const observer = (m: Module, out: Tensor) => {
    if (!leaves.has(m)) return;
    const saved = memory().current.saved;
    rows.push({
      path: m.path,
      type: m instanceof Lambda ? m.label : m.constructor.name,
      outputShape: [...out.shape],
      parameters: m.parameterCount(),
      savedBytes: saved - lastSaved,
    });
    lastSaved = saved;
  };
  Module.callObservers.push(observer);
  let savedBytes = 0;
  try {
    scope(() => {
      const x = Tensor.empty(inputShape, dtype);
      const before = memory().current.saved;
      lastSaved = before;
      // Saved values exist only while some input requires grad: parameters do.
      model.call(x);
      savedBytes = memory().current.saved - before;
    });
  } finally {
    Module.callObservers.splice(Module.callObservers.indexOf(observer), 1);
  }
  const parameters = model.parameterCount();
  return { layers: rows, parameters, parameterBytes: parameters * 4, savedBytes, inputShape };
}

/** Runs one method over many rows and scores it against exact values (the bench / CLI protocol). */
import { BudgetError } from './estimators.js';
import type { ExplainOptions, Explainer, Explanation } from './explainer.js';
import { absError, faithfulnessCurve, rankAccuracy } from './metrics.js';

/** Aggregate scores of one method at one budget over a set of rows. */
export interface MethodScore {
  method: string;
  budget: number;
  rows: number;
  /** Mean Σ_i |φ̂_i − φ_i| per row (NaN without exact values or when the budget is too small). */
  absError: number;
  /** Mean rank accuracy (NaN as above). */
  rankAccuracy: number;
  /** Mean monotonicity / faithfulness of the estimate (curves evaluated outside the timed region). */
  monotonicity: number;
  faithfulness: number;
  /** Rows explained per second over the whole run, selection (Hessian / finite differences) included. */
  instancesPerSec: number;
  /** 1 / median per-row wall time: the same throughput, robust to bursts of load from other processes. */
  medianInstancesPerSec: number;
  /** Mean coalition evaluations per row, selection included. */
  evaluationsPerRow: number;
  crossContribution?: string;
  /** Set when the method cannot run at this budget (e.g. a singular KernelSHAP regression). */
  error?: string;
}

/**
 * Explains `rows` rows (row-major in `xs`) with one method and scores them. `exact` holds the exact
 * values (rows × players) or null. Faithfulness curves are optional (they cost M + 1 evaluations a row).
 * @example const score = evaluateMethod(explainer, testX, 50, exact, { method: 'shear', budget: 8 });
 */
export function evaluateMethod(
  explainer: Explainer, xs: Float64Array, rows: number, exact: Float64Array | null, opts: ExplainOptions, curves = false,
): MethodScore {
  const budget = opts.budget ?? 32;
  const base = { method: opts.method, budget, rows };
  let explanations: Explanation[];
  const start = performance.now();
  try {
    explanations = explainer.explainMany(xs, rows, opts);
  } catch (e) {
    if (!(e instanceof BudgetError)) throw e;
    return { ...base, absError: NaN, rankAccuracy: NaN, monotonicity: NaN, faithfulness: NaN, instancesPerSec: NaN, medianInstancesPerSec: NaN, evaluationsPerRow: NaN, error: e.message };
  }
  const seconds = (performance.now() - start) / 1000;
  const players = explanations[0]!.values.length;
  let err = 0, rank = 0, mono = 0, faith = 0, evals = 0;
  const width = explainer.model.inputSize;
  explanations.forEach((e, r) => {
    evals += e.evaluations;
    if (exact) {
      const truth = exact.subarray(r * players, (r + 1) * players);
      err += absError(e.values, truth);
      rank += rankAccuracy(e.values, truth);
    }
    if (curves) {
      const curve = faithfulnessCurve(explainer.game(xs.subarray(r * width, (r + 1) * width)), e.values);
      mono += curve.monotonicity;
      faith += curve.faithfulness;
    }
  });
  const cross = explanations[0]!.crossContribution;
  const perRow = explanations.map((e) => e.seconds).sort((a, b) => a - b);
  const median = rows % 2 ? perRow[(rows - 1) / 2]! : (perRow[rows / 2 - 1]! + perRow[rows / 2]!) / 2;
  return {
    ...base,
    absError: exact ? err / rows : NaN,
    rankAccuracy: exact ? rank / rows : NaN,
    monotonicity: curves ? mono / rows : NaN,
    faithfulness: curves ? faith / rows : NaN,
    instancesPerSec: rows / seconds,
    medianInstancesPerSec: 1 / median,
    evaluationsPerRow: evals / rows,
    ...(cross !== undefined ? { crossContribution: cross } : {}),
  };
}

/** Exact values of `rows` rows, row-major rows × players, and the seconds it took. */
export function exactValues(explainer: Explainer, xs: Float64Array, rows: number): { values: Float64Array; seconds: number } {
  const start = performance.now();
  const all = explainer.explainMany(xs, rows, { method: 'exact' });
  const players = all[0]!.values.length;
  const values = new Float64Array(rows * players);
  all.forEach((e, r) => values.set(e.values, r * players));
  return { values, seconds: (performance.now() - start) / 1000 };
}

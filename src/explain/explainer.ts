/**
 * The explainer API: one game definition (model + players + reference or background) shared by
 * every method, a budget in coalition evaluations per feature with the same meaning for all.
 */
import { Rng } from '../util/rng.js';
import {
  BudgetError, controlVariateShapley, exactShapley, finiteDifferenceEta, hessianEta, kernelShapley, permutationShapley, playerDirections,
  randomCooperators, selectCooperators, shearAntitheticShapley, shearCooperators, shearShapley, MAX_EXACT_PLAYERS,
} from './estimators.js';
import { ModelGame, type BatchedModel, type ModelGameOptions } from './game.js';

/** Every estimator, by name. */
export const METHODS = ['exact', 'permutation', 'antithetic', 'kernel', 'kernel-paired', 'shear', 'shear-random', 'shear-antithetic', 'shear-cv'] as const;
export type Method = (typeof METHODS)[number];

/** Methods that need no derivatives of the model (black-box, ReLU or packed models). */
const THIRD_ORDER_FREE_METHODS = 'antithetic or shear-antithetic';

/** Whether `method` can explain `model` ('shear-cv' needs third derivatives). */
export function methodSupported(model: ExplainableModel, method: Method): boolean {
  return method !== 'shear-cv' || model.thirdOrderInteractions !== undefined;
}

/** A model with optional second derivatives (for SHEAR's Hessian cross-contribution). */
export interface ExplainableModel {
  /** Encoded input width. */
  inputSize: number;
  predict: BatchedModel;
  /**
   * Hessian-vector products of the scalar output at x: `directions` holds `count` vectors
   * (count × inputSize, row-major); returns H(x)·v for each, same layout. Smooth models only.
   */
  hessianVectorProducts?(x: Float64Array, directions: Float64Array, count: number): Float64Array;
  /** How the products are computed (reported in explanations), e.g. 'autograd double backward'. */
  hessianSource?: string;
  /**
   * Third-order directional derivatives D³f(point)[v_i, v_j, v_k] of the scalar output for every
   * triple i < j < k of the `count` directions (count × inputSize), packed lexicographically
   * (tripleCount(count) values). Smooth models only; used by 'shear-cv'.
   */
  thirdOrderInteractions?(point: Float64Array, directions: Float64Array, count: number): Float64Array;
  /** How the third-order values are computed (reported in explanations). */
  thirdOrderSource?: string;
}

/** Per-call options of {@link Explainer.explain}. */
export interface ExplainOptions {
  method: Method;
  /** Coalition evaluations per feature (ignored by 'exact'). Default 32. */
  budget?: number;
  /** RNG seed (default 0); with `stream`, makes the explanation reproducible. */
  seed?: number;
  /** RNG stream (default 0); explainMany uses the row index. */
  stream?: number;
  /**
   * SHEAR cross-contribution: 'hessian' (needs model.hessianVectorProducts), 'finite-difference'
   * (any model), or 'auto' (default): Hessian when the model has one, else finite differences.
   */
  crossContribution?: 'auto' | 'hessian' | 'finite-difference';
}

/** One explained instance. */
export interface Explanation {
  method: Method;
  /** Estimated Shapley value per player. */
  values: Float64Array;
  players: string[];
  /** Coalition evaluations, including SHEAR's finite-difference selection. */
  evaluations: number;
  /** Of those, spent on cooperator selection. */
  selectionEvaluations: number;
  /** Model rows run (evaluations × background rows). */
  modelRows: number;
  /** SHEAR only: how cooperators were chosen. */
  crossContribution?: string;
  /** SHEAR only: cooperators of each player. */
  cooperators?: Int32Array[];
  /** Wall time of the whole explanation, selection included. */
  seconds: number;
}

/**
 * Explains a model's scalar output on single rows with any of {@link METHODS}.
 * @example
 * const explainer = new Explainer(model, { reference: meanRow, groups: dataset.groups });
 * const e = explainer.explain(row, { method: 'shear', budget: 8 });
 * e.values // one Shapley value per group (categorical block = one player)
 */
export class Explainer {
  readonly model: ExplainableModel;

  constructor(
    model: ExplainableModel | BatchedModel,
    readonly options: ModelGameOptions & { maxExactPlayers?: number },
  ) {
    this.model = typeof model === 'function' ? { inputSize: (options.reference?.length ?? -1), predict: model } : model;
    if (this.model.inputSize < 1) throw new RangeError('Explainer: a plain function model needs a reference row (or pass {inputSize, predict})');
  }

  /** The game of one row (exposed for metrics and custom estimators). */
  game(x: Float64Array): ModelGame {
    if (x.length !== this.model.inputSize) throw new RangeError(`Explainer: row has ${x.length} values, the model takes ${this.model.inputSize}`);
    return new ModelGame(this.model.predict, x, this.options);
  }

  explain(x: Float64Array, opts: ExplainOptions): Explanation {
    const start = performance.now();
    const method = opts.method;
    if (!(METHODS as readonly string[]).includes(method)) throw new RangeError(`Explainer: unknown method '${method}' (available: ${METHODS.join(', ')})`);
    const budget = opts.budget ?? 32;
    const game = this.game(x);
    const rng = new Rng(opts.seed ?? 0, opts.stream ?? 0);
    let values: Float64Array;
    let selectionEvaluations = 0;
    let crossContribution: string | undefined;
    let cooperators: Int32Array[] | undefined;
    switch (method) {
      case 'exact': values = exactShapley(game, this.options.maxExactPlayers ?? MAX_EXACT_PLAYERS); break;
      case 'permutation': values = permutationShapley(game, budget, rng); break;
      case 'antithetic': values = permutationShapley(game, budget, rng, true); break;
      case 'kernel': values = kernelShapley(game, budget, rng); break;
      case 'kernel-paired': values = kernelShapley(game, budget, rng, true); break;
      case 'shear-cv': {
        // SHEAR's cross-contribution step taken to third order: the Taylor interaction of every triple
        // of players at the midpoint of reference and row, whose surrogate game is solved exactly and
        // serves as a control variate for fully antithetic permutation sampling.
        if (!this.model.thirdOrderInteractions) throw new RangeError(`shear-cv: the model has no thirdOrderInteractions (smooth tabular MLPs have; use ${THIRD_ORDER_FREE_METHODS} for black-box or ReLU models)`);
        const r = game.referenceRow();
        const mid = x.map((v, c) => (v + r[c]!) / 2);
        const triples = this.model.thirdOrderInteractions(mid, playerDirections(x, r, game.groups), game.players);
        crossContribution = `third-order (${this.model.thirdOrderSource ?? 'model-supplied'}, at the midpoint)`;
        values = controlVariateShapley(game, budget, rng, triples);
        break;
      }
      case 'shear':
      case 'shear-random':
      case 'shear-antithetic': {
        const least = method === 'shear-antithetic' ? 4 : 2;
        if (!Number.isInteger(budget) || budget < least) throw new BudgetError(`${method}: budget must be an integer ≥ ${least} (2^(K+1) evaluations per feature${least === 4 ? ', an antithetic pair at least' : ''}), got ${budget}`);
        const k = shearCooperators(game.players, budget);
        // shear-antithetic without cooperators (one player) pairs two rounds instead of two subsets.
        const rounds = k === 0 ? 2 * Math.floor(budget / 4) : Math.floor(budget / 2 ** (k + 1));
        if (method === 'shear-random') {
          cooperators = randomCooperators(game.players, k, rng);
          crossContribution = 'random';
        } else {
          const source = this.crossContributionSource(opts.crossContribution ?? 'auto');
          let eta: Float64Array;
          if (source === 'hessian') {
            const r = game.referenceRow();
            const hv = this.model.hessianVectorProducts!(x, playerDirections(x, r, game.groups), game.players);
            eta = hessianEta(hv, x, r, game.groups);
            crossContribution = `hessian (${this.model.hessianSource ?? 'model-supplied'})`;
          } else {
            eta = finiteDifferenceEta(game);
            selectionEvaluations = game.evaluations;
            crossContribution = 'finite-difference (others at reference)';
          }
          cooperators = selectCooperators(eta, game.players, k);
        }
        values = method === 'shear-antithetic'
          ? shearAntitheticShapley(game, cooperators, rng, rounds)
          : shearShapley(game, cooperators, rng);
        break;
      }
    }
    return {
      method, values, players: game.groups.map((g) => g.name),
      evaluations: game.evaluations, selectionEvaluations, modelRows: game.modelRows,
      ...(crossContribution !== undefined ? { crossContribution } : {}),
      ...(cooperators ? { cooperators } : {}),
      seconds: (performance.now() - start) / 1000,
    };
  }

  /** Explains `rows` rows of `xs` (row-major); row r uses RNG stream r. */
  explainMany(xs: Float64Array, rows: number, opts: ExplainOptions): Explanation[] {
    const width = this.model.inputSize;
    if (xs.length !== rows * width) throw new RangeError(`Explainer: ${rows} rows need ${rows * width} values, got ${xs.length}`);
    return Array.from({ length: rows }, (_, r) => this.explain(xs.subarray(r * width, (r + 1) * width), { ...opts, stream: r }));
  }

  private crossContributionSource(choice: 'auto' | 'hessian' | 'finite-difference'): 'hessian' | 'finite-difference' {
    if (choice === 'hessian' && !this.model.hessianVectorProducts) throw new RangeError('shear: crossContribution "hessian" needs a model with hessianVectorProducts (use "finite-difference" for black-box or ReLU models)');
    if (choice !== 'auto' && choice !== 'hessian' && choice !== 'finite-difference') throw new RangeError(`shear: unknown crossContribution '${choice}' (auto, hessian, finite-difference)`);
    return choice === 'auto' ? (this.model.hessianVectorProducts ? 'hessian' : 'finite-difference') : choice;
  }
}

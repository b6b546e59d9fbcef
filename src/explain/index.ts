/** Shapley explanations: games, estimators (exact, permutation, antithetic, KernelSHAP, SHEAR and its variants), metrics. */
export { ModelGame, FunctionGame, normalizeGroups, type BatchedModel, type CooperativeGame, type ModelGameOptions, type PlayerGroup } from './game.js';
export {
  BudgetError, MAX_EXACT_PLAYERS, exactShapley, permutationShapley, controlVariateShapley, tripleCount, permutationsForBudget, kernelShapley, shearShapley,
  shearCooperators, selectCooperators, randomCooperators, finiteDifferenceEta, hessianEta, playerDirections, shapleyWeights, solveLinear, shearAntitheticShapley,
} from './estimators.js';
export { absError, rankAccuracy, argsort, pearson, faithfulnessCurve, deletionCurve, type FaithfulnessCurve, type DeletionCurve } from './metrics.js';
export { Explainer, METHODS, methodSupported, type Method, type ExplainableModel, type ExplainOptions, type Explanation } from './explainer.js';
export { evaluateMethod, exactValues, type MethodScore } from './evaluate.js';
export {
  createTabularMlp, trainTabularMlp, explainableMlp, classOneLogits, classOneHvp, classOneThirdOrder, mlpAccuracy,
  type TabularMlp, type TabularMlpOptions, type TrainOptions, type LabelledRows, type HvpMethod, type HvpSource,
} from './tabular-mlp.js';
export {
  imagePatches, imageSegments, superpixels, imageExplainer, maskerImage, boxBlur, moduleOutput, deployedOutput, gradientTimesInput, MASKERS,
  type ImageShape, type Masker, type ImagePlayers, type ImageExplainer, type ImageExplainerOptions,
} from './images.js';
export {
  barPlot, waterfallPlot, beeswarmPlot, imageHeatmap,
  type RowExplanation, type WaterfallRow, type ManyRows, type PlotOptions, type HeatmapPanel, type HeatmapOptions,
} from './plots.js';

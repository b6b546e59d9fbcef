/**
 * slimgrad: deep learning in TypeScript with far less memory and far fewer bits.
 *
 * @example
 * ```ts
 * import { createModel, Adam, fit, syntheticShapes } from 'slimgrad';
 * const [train, test] = syntheticShapes({ n: 2000, seed: 1 }).split(1600);
 * const model = createModel('lenet', train.itemShape, 10, 1);
 * const report = fit(model, train, test, { epochs: 2, batchSize: 64, optimizer: new Adam(model.parameters()) });
 * console.log(report.testAccuracy, report.peakSavedBytes);
 * ```
 */
import { useFastestBackend } from './backends/index.js';

export * from './portable.js';
export * from './data/index.js';
export { saveModule, loadModule, saveTrainingCheckpoint, loadTrainingCheckpoint } from './io/checkpoint.js';
export { writeFileAtomic, checkOutputPath, OutputPathError } from './io/write.js';
export { importOnnx, type ImportedModel } from './io/onnx/import.js';
export { exportOnnx, type ExportOptions } from './io/onnx/export.js';
export { GraphModule, Merge, type GraphNode } from './io/onnx/graph.js';
export { saveDeployed, loadDeployed, loadQuantKernelsFromBuild } from './io/quant.js';
export * as distributed from './distributed/index.js';

// The fastest available kernels by default; the reference backend stays selectable (setBackend).
useFastestBackend();

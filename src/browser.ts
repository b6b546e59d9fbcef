/**
 * slimgrad for browsers (`import ... from 'slimgrad/browser'`, or the package's "browser"
 * condition): everything of the Node entry that needs no file system, plus loaders from bytes,
 * Blobs, Responses and URLs, Blob saving, and `initBrowser`, which loads the wasm kernels (from
 * next to the bundle) and starts Web Worker threads when the page is cross-origin isolated. No
 * Node built-in is reachable from here (test/browser/bundle.test.ts).
 *
 * @example
 * ```ts
 * // in a Web Worker (module type), served with COOP/COEP headers for threads
 * import { initBrowser, createModel, Adam, fit, syntheticShapes, moduleBlob } from 'slimgrad/browser';
 * await initBrowser();
 * const [train, test] = syntheticShapes({ n: 2000, seed: 1 }).split(1600);
 * const model = createModel('lenet', train.itemShape, 10, 1);
 * const report = fit(model, train, test, { epochs: 1, batchSize: 64, optimizer: new Adam(model.parameters()) });
 * postMessage({ accuracy: report.testAccuracy, file: moduleBlob(model) });
 * ```
 */
export * from './portable.js';
export * from './browser/sources.js';
export { initBrowser, type BrowserOptions, type BrowserSetup } from './browser/init.js';
export { startThreads } from './backends/index.js';

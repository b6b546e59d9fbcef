/**
 * The page side of `slimgrad bench browser`: a module Web Worker timing training steps of slimgrad
 * (the browser entry, wasm kernels fetched next to this bundle, Web Worker threads) and of tfjs
 * (cpu and wasm backends) on the same fixed batches as `bench engine` (bench/engine-train.ts).
 */
import { initBrowser, startThreads } from '../src/browser.js';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { slimgradStep, tfjsStep, timeSteps, TRAIN_SPECS, type TrainModel } from './engine-train.js';

export interface BrowserCase {
  model: TrainModel;
  engine: 'slimgrad-browser' | 'tfjs-cpu' | 'tfjs-wasm';
  threads: number;
  seconds: number;
}

let setup: ReturnType<typeof initBrowser> | undefined;

async function run(c: BrowserCase): Promise<{ samplesPerSec: number | null; threads: number; error: string | null }> {
  try {
    let step: () => void;
    let threads = c.threads;
    if (c.engine === 'slimgrad-browser') {
      setup ??= initBrowser({ threads: 1 });
      await setup;
      threads = await startThreads(c.threads);
      step = slimgradStep(c.model);
    } else {
      setWasmPaths(new URL('./', import.meta.url).href);
      if (c.engine === 'tfjs-wasm') setThreadsCount(c.threads);
      step = await tfjsStep(c.model, c.engine === 'tfjs-cpu' ? 'cpu' : 'wasm');
    }
    const seconds = await timeSteps(step, c.seconds);
    return { samplesPerSec: TRAIN_SPECS[c.model].batch / seconds, threads, error: null };
  } catch (e) {
    return { samplesPerSec: null, threads: c.threads, error: (e as Error).message.split('\n')[0]! };
  }
}

(globalThis as unknown as { onmessage: (e: MessageEvent<BrowserCase>) => void }).onmessage = async (e) => {
  (globalThis as unknown as { postMessage(m: unknown): void }).postMessage(await run(e.data));
};

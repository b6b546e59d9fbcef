/**
 * The page's training worker (a module Web Worker): slimgrad runs here, off the page's main thread,
 * so kernel threads may block in Atomics.wait. Everything the page shows is computed here.
 */
import {
  initBrowser, startThreads, loadMnistFrom, moduleBlob, deployedBlob, predict, quant, SYNTHETIC_CLASSES,
  type Dataset, type Module,
} from '../../src/browser.js';
import { classifyImage, predictDeployed, savedBytesByMode, syntheticSplits, trainModel } from './tasks.js';
import type { Commands, Reply, Request } from './protocol.js';

const scope = globalThis as unknown as { postMessage(m: Reply): void; onmessage: ((e: MessageEvent<Request>) => void) | null };

let trained: { model: Module; name: string; test: Dataset } | undefined;
let deployed: quant.DeployedModel | undefined;

async function mnistSplits(m: NonNullable<Commands['train']['args']['mnist']>): Promise<[Dataset, Dataset]> {
  const all = await loadMnistFrom(m.images, m.labels);
  const trainItems = Math.min(m.trainItems, all.length);
  const [train, rest] = all.split(trainItems);
  // A file with no items past the training ones is tested on its first items.
  const test = (rest.length > 0 ? rest : train).subset(0, Math.min(rest.length || train.length, m.testItems));
  return [train, test];
}

const handlers: { [C in keyof Commands]: (args: Commands[C]['args']) => Promise<Commands[C]['result']> | Commands[C]['result'] } = {
  async init({ threads }) {
    const setup = await initBrowser({ threads });
    return { ...setup, crossOriginIsolated: Boolean((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated) };
  },
  threads: ({ n }) => startThreads(n),
  async train({ spec, mnist }) {
    const data = mnist ? await mnistSplits(mnist) : syntheticSplits(spec);
    trained?.model.dispose();
    deployed = undefined;
    let last = 0;
    const { model, result } = await trainModel(spec, data, {
      onProgress: (p) => {
        const now = performance.now();
        if (now - last < 100 && p.batch < p.batches) return;
        last = now;
        scope.postMessage({ event: 'progress', epoch: p.epoch, batch: p.batch, batches: p.batches, loss: p.loss, savedBytes: p.savedBytes, samplesPerSec: p.samplesPerSec });
      },
      onEpoch: (e) => scope.postMessage({ event: 'epoch', epoch: e.epoch, epochs: spec.epochs, testAccuracy: e.testAccuracy, trainLoss: e.trainLoss }),
    });
    trained = { model, name: spec.model, test: data[1] };
    const classes = mnist ? Array.from({ length: 10 }, (_, i) => String(i)) : [...SYNTHETIC_CLASSES];
    return { ...result, parameters: model.parameterCount(), trainItems: data[0].length, testItems: data[1].length, classes };
  },
  saved: ({ model, modes, batch, seed }) => savedBytesByMode(model, modes, batch, seed),
  convert() {
    if (!trained) throw new Error('convert: train a model first');
    deployed = quant.convert(trained.model, [...trained.test.itemShape]);
    const packed = predictDeployed(deployed, trained.test);
    const float = predict(trained.model, trained.test).predictions;
    let correct = 0, same = 0;
    for (let i = 0; i < packed.length; i++) {
      if (packed[i] === trained.test.y[i]) correct++;
      if (packed[i] === float[i]) same++;
    }
    return {
      sgqBytes: quant.encodeDeployed(deployed).length, floatBytes: trained.model.parameterCount() * 4,
      packedAccuracy: correct / packed.length, agreement: same / packed.length,
    };
  },
  predict({ sgq, spec }) {
    const model = quant.decodeDeployed(sgq, 'model.sgq');
    return [...predictDeployed(model, syntheticSplits(spec)[1])];
  },
  classify({ pixels }) {
    if (!deployed) throw new Error('classify: convert a trained model first');
    return classifyImage(deployed, pixels);
  },
  download({ what }) {
    if (what === 'sgq') {
      if (!deployed) throw new Error('download: convert a trained model first');
      return deployedBlob(deployed);
    }
    if (!trained) throw new Error('download: train a model first');
    return moduleBlob(trained.model, { model: trained.name });
  },
};

scope.onmessage = async (e) => {
  const { id, cmd, args } = e.data;
  try {
    const value = await (handlers[cmd] as (a: typeof args) => unknown)(args);
    scope.postMessage({ id, ok: true, value });
  } catch (err) {
    scope.postMessage({ id, ok: false, error: (err as Error).message ?? String(err) });
  }
};

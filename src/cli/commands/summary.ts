import { createModel, MODEL_NAMES } from '../../nn/models.js';
import { describe } from '../../nn/summary.js';
import { formatSummary, summary as quantSummary } from '../../quant/summary.js';
import { quantPresets } from '../../quant/models.js';
import { printJson, printTable } from '../command.js';
import { defineCommand, JSON_OPTION, type CommandSpec } from '../options.js';
import { buildModel } from './train.js';

const INPUTS: Record<string, number[]> = { synthetic: [1, 28, 28], mnist: [1, 28, 28], 'synthetic-rgb': [3, 32, 32], cifar10: [3, 32, 32] };

export const summarySpec: CommandSpec = {
  name: 'summary',
  summary: 'describe a model: layers, output shapes, parameters, saved-for-backward memory; with --quant: bits, packed size, MACs by precision',
  options: [
    { name: 'model', type: 'choice', choices: MODEL_NAMES, default: 'lenet', help: 'architecture' },
    { name: 'data', type: 'choice', choices: Object.keys(INPUTS), default: 'synthetic', help: 'dataset whose item shape to use' },
    { name: 'batch-size', type: 'int', min: 1, default: 64, help: 'batch for the saved-for-backward figure' },
    { name: 'quant', type: 'choice', choices: quantPresets, help: 'describe this quantized preset of --model mlp or lenet instead' },
    JSON_OPTION,
  ],
  examples: ['slimgrad summary --model lenet --data mnist', 'slimgrad summary --model lenet --quant bnn'],
};

export const summary = defineCommand(summarySpec, async (o) => {
  const modelName = o.string('model')!, data = o.string('data')!, quant = o.string('quant');
  const item = INPUTS[data]!, batch = o.int('batch-size')!;
  if (quant) {
    const qmodel = buildModel(modelName, quant, item, 10, 0);
    const qs = quantSummary(qmodel, item);
    if (o.bool('json')) printJson({ model: modelName, quant, ...qs });
    else console.log(formatSummary(qs));
    qmodel.dispose();
    return 0;
  }
  const model = createModel(modelName, item, 10, 0);
  const s = describe(model, [batch, ...item]);
  if (o.bool('json')) printJson({ model: modelName, batch, ...s });
  else {
    printTable(s.layers.map((l) => ({ layer: l.path, type: l.type, output: `[${l.outputShape.join(', ')}]`, params: l.parameters, savedKiB: +(l.savedBytes / 1024).toFixed(1) })));
    console.log(`\n${s.parameters} parameters (${(s.parameterBytes / 1024).toFixed(1)} KiB float32); saved for backward at batch ${batch}: ${(s.savedBytes / 1024 / 1024).toFixed(2)} MiB`);
  }
  model.dispose();
  return 0;
});

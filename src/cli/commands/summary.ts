import { parseArgs } from 'node:util';
import { createModel, MODEL_NAMES } from '../../nn/models.js';
import { describe } from '../../nn/summary.js';
import { applyQuantPreset } from '../../quant/models.js';
import { formatSummary, summary as quantSummary } from '../../quant/summary.js';
import { printJson, printTable, UsageError, type Command } from '../command.js';

const INPUTS: Record<string, number[]> = { synthetic: [1, 28, 28], mnist: [1, 28, 28], cifar10: [3, 32, 32] };

export const summary: Command = {
  name: 'summary',
  summary: 'describe a model: layers, output shapes, parameters, saved-for-backward memory; with --quant PRESET: bits, packed size, MACs by precision [--json]',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        model: { type: 'string', default: 'lenet' },
        data: { type: 'string', default: 'synthetic' },
        'batch-size': { type: 'string', default: '64' },
        quant: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (!MODEL_NAMES.includes(values.model as never)) throw new UsageError(`unknown --model '${values.model}' (available: ${MODEL_NAMES.join(', ')})`);
    const item = INPUTS[values.data!];
    if (!item) throw new UsageError(`unknown --data '${values.data}' (available: ${Object.keys(INPUTS).join(', ')})`);
    const batch = Number(values['batch-size']);
    if (!Number.isInteger(batch) || batch < 1) throw new UsageError(`--batch-size must be a positive integer, got '${values['batch-size']}'`);
    if (values.quant) {
      let qmodel;
      try {
        qmodel = applyQuantPreset(values.model!, values.quant, 0);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      const qs = quantSummary(qmodel, item);
      if (values.json) printJson({ model: values.model, quant: values.quant, ...qs });
      else console.log(formatSummary(qs));
      qmodel.dispose();
      return 0;
    }
    const model = createModel(values.model!, item, 10, 0);
    const s = describe(model, [batch, ...item]);
    if (values.json) printJson({ model: values.model, batch, ...s });
    else {
      printTable(s.layers.map((l) => ({ layer: l.path, type: l.type, output: `[${l.outputShape.join(', ')}]`, params: l.parameters, savedKiB: +(l.savedBytes / 1024).toFixed(1) })));
      console.log(`\n${s.parameters} parameters (${(s.parameterBytes / 1024).toFixed(1)} KiB float32); saved for backward at batch ${batch}: ${(s.savedBytes / 1024 / 1024).toFixed(2)} MiB`);
    }
    model.dispose();
    return 0;
  },
};

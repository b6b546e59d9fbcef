import { parseArgs } from 'node:util';
import { loadModule } from '../../io/checkpoint.js';
import { saveDeployed } from '../../io/quant.js';
import { applyQuantPreset, quantPresets } from '../../quant/models.js';
import { convert as convertModel } from '../../quant/convert.js';
import { payloadBytes } from '../../io/deployed-format.js';
import { formatSummary, summary } from '../../quant/summary.js';
import { printJson, UsageError, type Command } from '../command.js';

/** Input shape of the quantized presets (MNIST). */
export const QUANT_INPUT = [1, 28, 28];

/**
 * `slimgrad convert --model lenet --quant bnn --checkpoint model.safetensors --out model.sgq`:
 * packs a trained quantized model (a checkpoint saved by `slimgrad train --quant ... --save`)
 * into the deployable SGQM file and prints its summary.
 */
export const convert: Command = {
  name: 'convert',
  summary: 'pack a trained quantized model: --model mlp|lenet --quant bnn|xnor|bwn|twn|w8a8 --checkpoint FILE --out FILE.sgq [--json]',
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        model: { type: 'string', default: 'lenet' },
        quant: { type: 'string' },
        checkpoint: { type: 'string' },
        untrained: { type: 'boolean', default: false },
        seed: { type: 'string', default: '1' },
        out: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (!values.quant) throw new UsageError(`--quant is required (${quantPresets.join(', ')})`);
    if (!values.out) throw new UsageError('--out FILE.sgq is required');
    if (!values.checkpoint && !values.untrained) throw new UsageError('--checkpoint FILE (from `slimgrad train --quant ... --save FILE`) is required; pass --untrained to pack initial weights');
    const seed = Number(values.seed);
    if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got '${values.seed}'`);
    let model;
    try {
      model = applyQuantPreset(values.model!, values.quant, seed);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (values.checkpoint) loadModule(model, values.checkpoint);
    const s = summary(model, QUANT_INPUT);
    const deployed = convertModel(model, QUANT_INPUT);
    const fileBytes = saveDeployed(deployed, values.out);
    const payload = payloadBytes(deployed);
    const out = {
      model: values.model, quant: values.quant, out: values.out, fileBytes, payloadBytes: payload, headerBytes: fileBytes - payload,
      summaryBytes: s.memoryBits / 8, floatBytes: (s.floatKiB * 1024), compressionRatio: s.compressionRatio,
      packedLayers: s.packedLayers, fallbackLayers: s.fallbackLayers,
    };
    if (values.json) printJson(out);
    else {
      console.log(formatSummary(s));
      console.log(`\nwrote ${values.out}: ${fileBytes} bytes (payload ${payload} + header ${fileBytes - payload}; summary predicts ${Math.round(s.memoryBits / 8)} bytes)`);
    }
    model.dispose();
    return 0;
  },
};

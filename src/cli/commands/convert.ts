import { readCheckpoint, loadModule } from '../../io/checkpoint.js';
import { saveDeployed } from '../../io/quant.js';
import { checkOutputPath } from '../../io/write.js';
import { quantPresets } from '../../quant/models.js';
import { convert as convertModel } from '../../quant/convert.js';
import { payloadBytes } from '../../io/deployed-format.js';
import { formatSummary, summary } from '../../quant/summary.js';
import { printJson, UsageError } from '../command.js';
import { defineCommand, FORCE_OPTION, JSON_OPTION, type CommandSpec } from '../options.js';
import { buildModel } from './train.js';

/** Input shape and classes of an untrained conversion (MNIST). */
const MNIST_SHAPE = [1, 28, 28];

export const convertSpec: CommandSpec = {
  name: 'convert',
  summary: 'pack a trained model (from train [--quant ...] --save) into a deployable .sgq file',
  description: 'The model, preset, input shape and class count come from the checkpoint\'s metadata; --model/--quant are needed only for --untrained or checkpoints without them. A checkpoint trained without --quant deploys as a float model (ResNet-20 included: residual blocks are stages of the file).',
  options: [
    { name: 'checkpoint', type: 'file', help: 'trained model from `slimgrad train [--quant PRESET] --save FILE`' },
    { name: 'out', type: 'file', required: true, help: 'deployable model to write (.sgq)' },
    { name: 'model', type: 'choice', choices: ['mlp', 'lenet', 'cnn', 'vgg-small', 'resnet20'], help: 'architecture (default: the checkpoint\'s, else lenet)' },
    { name: 'quant', type: 'choice', choices: quantPresets, help: 'quantization preset (default: the checkpoint\'s; none: a float model)' },
    { name: 'untrained', type: 'boolean', default: false, help: 'pack the initial weights of --model/--quant for MNIST shapes (no checkpoint)' },
    { name: 'seed', type: 'int', min: 0, default: 1, help: 'seed of the initial weights with --untrained' },
    FORCE_OPTION,
    JSON_OPTION,
  ],
  examples: ['slimgrad convert --checkpoint bnn.safetensors --out bnn.sgq', 'slimgrad convert --checkpoint resnet20.safetensors --out resnet20.sgq'],
};

/**
 * `slimgrad convert --checkpoint model.safetensors --out model.sgq`: packs a trained quantized
 * model into the deployable SGQM file and prints its summary.
 */
export const convert = defineCommand(convertSpec, async (o) => {
  const file = o.string('checkpoint'), out = o.string('out')!;
  if (!file && !o.bool('untrained')) throw new UsageError('--checkpoint FILE (from `slimgrad train --quant ... --save FILE`) is required; pass --untrained to pack initial weights');
  if (file && o.bool('untrained')) throw new UsageError('give --checkpoint FILE or --untrained, not both');
  checkOutputPath(out, { overwrite: o.bool('force'), what: '--out' });
  const meta = file ? readCheckpoint(file).metadata : {};
  const modelName = o.string('model') ?? meta['model'] ?? 'lenet';
  const quant = o.string('quant') ?? meta['quant'];
  if (!quant && !file) throw new UsageError(`--quant is required with --untrained (${quantPresets.join(', ')})`);
  const itemShape = meta['itemShape'] ? (JSON.parse(meta['itemShape']) as number[]) : MNIST_SHAPE;
  const classes = meta['classes'] ? Number(meta['classes']) : 10;
  const model = buildModel(modelName, quant ?? undefined, itemShape, classes, o.int('seed')!);
  if (file) loadModule(model, file);
  const s = summary(model, itemShape);
  const deployed = convertModel(model, itemShape);
  const fileBytes = saveDeployed(deployed, out, { overwrite: o.bool('force'), what: '--out' });
  const payload = payloadBytes(deployed);
  const result = {
    model: modelName, quant: quant ?? null, out, fileBytes, payloadBytes: payload, headerBytes: fileBytes - payload,
    summaryBytes: s.memoryBits / 8, floatBytes: (s.floatKiB * 1024), compressionRatio: s.compressionRatio,
    packedLayers: s.packedLayers, fallbackLayers: s.fallbackLayers,
  };
  if (o.bool('json')) printJson(result);
  else {
    console.log(formatSummary(s));
    console.log(`\nwrote ${out}: ${fileBytes} bytes (payload ${payload} + header and checksum ${fileBytes - payload}; summary predicts ${Math.round(s.memoryBits / 8)} bytes)`);
  }
  model.dispose();
  return 0;
});

/**
 * Training across processes and machines: a model split into pipeline stages (GPipe schedule),
 * links between stages (in-process with a bandwidth/delay simulator, TCP, ZeroMQ), AC-SGD
 * activation codecs with per-example caches, and ring all-reduce for data parallelism.
 *
 * @example
 * ```ts
 * import { distributed } from 'slimgrad';
 * const { createTask, partition, runInProcess, parseCodec, disposeStage } = distributed;
 * const task = createTask({ model: 'mlp', examples: 64 });
 * const results = await runInProcess({
 *   task, ranges: partition(task.layers(), 2), batch: 8, micro: 2, steps: 10, sgd: { lr: 0.05 },
 *   forward: parseCodec('delta:4', 'forward'), backward: parseCodec('fixpoint:8', 'backward'),
 * }, { bitsPerSecond: 100e6 });
 * console.log(results[1].losses, results[0].sent.next.payloadBytes);
 * results.forEach(disposeStage);
 * ```
 */
export { runStage, disposeStage, forwardLayers, type StageConfig, type StageResult, type StepReport } from './stage.js';
export { runInProcess, neighboursOf, rankOf, rankName, stageLinks, type InProcessConfig } from './pipeline.js';
export { createTask, partition, batchIds, transformerLayers, TASK_MODELS, type PipelineTask, type TaskOptions, type TaskModel } from './tasks.js';
export {
  parseCodec, codecName, fixpointEncode, fixpointDecode, fixpointBytes, channelLayout, blockLayout, hashFloats,
  TensorEncoder, TensorDecoder, MemoryCache, FileCache, LowBitCache, makeCache,
  type CodecSpec, type CodecKind, type ExampleCache, type CacheMode, type ChannelLayout,
} from './codec.js';
export { ringAllReduce, ErrorFeedback, REDUCE_BLOCK, type Ring, type ReduceOptions } from './allreduce.js';
export { Link, inProcessPair, connectMesh, parseAddress, type LinkStats, type SimOptions, type MeshOptions, type TransportKind } from './transport.js';
export { encodeFrame, FrameReader, MAX_FRAME_BYTES, type Frame, type FrameHeader, type FrameKind } from './frame.js';

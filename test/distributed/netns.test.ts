import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useFastestBackend } from '../../src/backends/wasm/index.js';
import { launchStages } from '../../src/cli/commands/pipeline.js';
import { parseCodec } from '../../src/distributed/codec.js';
import { NetnsChain, netnsUnavailable } from '../../src/distributed/netns.js';
import { runInProcess } from '../../src/distributed/pipeline.js';
import { disposeStage } from '../../src/distributed/stage.js';
import { createTask, partition } from '../../src/distributed/tasks.js';

useFastestBackend();
const why = netnsUnavailable();

test('stage processes in two network namespaces over a 100 Mbit tbf-shaped veth pair: delta codec, same losses as in one process', { skip: why ? `network namespaces / tc tbf unavailable (${why}); the in-process link simulator tests cover the logic` : false }, async () => {
  const opts = { model: 'charlm', examples: 16, dim: 16, layers: 2, heads: 2, tokens: 8 } as const;
  const chain = new NetnsChain(2);
  try {
    chain.shape(100e6);
    const args = ['--model', 'charlm', '--examples', '16', '--dim', '16', '--layers', '2', '--heads', '2', '--tokens', '8', '--stages', '2', '--steps', '6',
      '--batch', '8', '--micro', '2', '--lr', '0.05', '--momentum', '0.9', '--forward', 'delta:4', '--backward', 'fixpoint:8'];
    const summaries = await launchStages({ args, peers: chain.peers(7300), stages: 2, replicas: 1, wrap: (r) => chain.wrap(r) });
    const task = createTask(opts);
    const local = await runInProcess({ task, ranges: partition(task.layers(), 2), batch: 8, micro: 2, steps: 6, sgd: { lr: 0.05, momentum: 0.9 }, forward: parseCodec('delta:4', 'f'), backward: parseCodec('fixpoint:8', 'b') });
    assert.deepEqual(summaries[1]!.losses, local[1]!.losses);
    // Same payload as in process; framing differs only by transport overheads.
    assert.equal(summaries[0]!.payloadBytes, local[0]!.sent.next.payloadBytes);
    local.forEach(disposeStage);
  } finally {
    chain.close();
  }
});

// Registry walks (not a test file): every op a generated test runs, directly or inside another
// op's forward or backward, is recorded, and the walk ends with a test that fails when a
// registered op was never run (a new op cannot skip the generated tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allOps, type OpDef } from '../src/ops/all.js';

/**
 * Wraps every registered op's forward to record that it ran; call `done()` after the walk's
 * tests are declared (node:test runs a file's top-level tests in order).
 */
export function registryWalk(walk: string): { ops: OpDef[]; done(): void } {
  const ops = allOps();
  const visited = new Set<string>();
  for (const op of ops) {
    const forward = op.forward;
    (op as { forward: OpDef['forward'] }).forward = (ctx, inputs, attrs) => {
      visited.add(op.name);
      return forward.call(op, ctx, inputs, attrs);
    };
  }
  return {
    ops,
    done() {
      test(`${walk}: every registered op was visited`, () => {
        assert.ok(ops.length > 40, `only ${ops.length} ops registered`);
        const missed = allOps().map((o) => o.name).filter((n) => !visited.has(n));
        assert.deepEqual(missed, [], `registered ops the ${walk} walk never ran`);
      });
    },
  };
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as act from '../../bench/act.js';
import { UsageError } from '../../src/cli/command.js';
import { runJson } from '../helpers.js';

/** A tiny char LM campaign: a few steps of a one-block model on a generated text. */
function tinyArgs(file: string, jobs: number): string[] {
  return ['--lm-only', '--json', '--lm-data', file, '--lm-modes', 'off,int8,auto:2', '--lm-steps', '3', '--lm-batch', '4',
    '--lm-tokens', '16', '--lm-dim', '16', '--lm-heads', '2', '--lm-layers', '1', '--lm-val', '6', '--lm-jobs', String(jobs)];
}

test('bench act --lm: rows {model, mode, seed, steps, valLoss, deltaVsOff, savedBytes, ratio}, the same in process and in child processes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slimgrad-lm-'));
  try {
    const file = join(dir, 'text.txt');
    const words = ['to', 'be', 'or', 'not', 'that', 'is', 'the', 'question', 'whether', 'tis', 'nobler', 'in', 'mind'];
    writeFileSync(file, Array.from({ length: 600 }, (_, i) => words[(i * 7 + (i >> 3)) % words.length]).join(' '));
    const inProcess = await runJson(act, tinyArgs(file, 1));
    const children = await runJson(act, tinyArgs(file, 2));
    assert.equal(inProcess.code, 0);
    const rows = inProcess.json.lm as Record<string, any>[];
    assert.deepEqual(rows.map((r) => r.mode), ['off', 'int8', 'auto:2']);
    const off = rows[0]!;
    for (const r of rows) {
      assert.equal(r.model, 'transformer');
      assert.equal(r.seed, 1);
      assert.equal(r.steps, 3);
      assert.ok(Number.isFinite(r.valLoss) && r.valLoss > 0, `${r.mode} valLoss ${r.valLoss}`);
      assert.ok(Math.abs(r.deltaVsOff - (r.valLoss - off.valLoss)) < 1e-12);
      assert.ok(Number.isInteger(r.savedBytes) && r.savedBytes > 0);
      assert.ok(Math.abs(r.ratio - off.savedBytes / r.savedBytes) < 1e-12);
    }
    // Compressed saves are smaller; auto:2 reports its allocation, the others none.
    assert.ok(rows[1]!.ratio > 2 && rows[2]!.ratio > rows[1]!.ratio, `ratios ${rows.map((r) => r.ratio)}`);
    assert.equal(off.allocatedBits, null);
    assert.ok(rows[2]!.allocatedBits > 0 && rows[2]!.allocatedBits <= 2.01);
    // Independent path: each run in a fresh child process gives the same losses and bytes.
    const strip = (rs: Record<string, any>[]) => rs.map(({ stepMs: _, ...r }) => r);
    assert.deepEqual(strip(children.json.lm), strip(rows));
    const targets = inProcess.json.targets as { target: string; value: number | null }[];
    assert.equal(targets.find((t) => t.target.startsWith('lm int8'))!.value, rows[1]!.deltaVsOff);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench act --lm: bad options are usage errors naming the flag', async () => {
  await assert.rejects(act.run(['--lm-only', '--lm-steps', '0']), (e: Error) => e instanceof UsageError && /--lm-steps/.test(e.message));
  await assert.rejects(act.run(['--lm-only', '--lm-modes', 'off,int3']), (e: Error) => e instanceof UsageError && /--lm-modes/.test(e.message));
  await assert.rejects(act.run(['--lm-only', '--lm-dim', '10', '--lm-heads', '4']), (e: Error) => e instanceof UsageError && /--lm-dim/.test(e.message));
  await assert.rejects(act.run(['--lm-only', '--lm-data', '/nonexistent/text.txt']), (e: Error) => e instanceof UsageError && /nonexistent/.test(e.message));
  await assert.rejects(act.run(['--lm-only', '--lm-auto-calibrate', '-1']), (e: Error) => e instanceof UsageError && /--lm-auto-calibrate/.test(e.message));
  await assert.rejects(act.run(['--sensitivity', '--sensitivity-pretrain', '1.5']), (e: Error) => e instanceof UsageError && /--sensitivity-pretrain/.test(e.message));
  await assert.rejects(act.run(['--sensitivity', '--sensitivity-bits', '9']), (e: Error) => e instanceof UsageError && /--sensitivity-bits/.test(e.message));
  await assert.rejects(act.run(['--sensitivity', '--sensitivity-models', 'vgg']), (e: Error) => e instanceof UsageError && /vgg/.test(e.message));
});

/**
 * Wiring: ranks (replica-major: rank = replica x stages + stage), which ranks talk to which, and
 * an in-process runner that trains every stage of every replica concurrently in this process
 * over in-process links (optionally bandwidth/delay-simulated).
 */
import { runStage, type StageConfig, type StageResult } from './stage.js';
import { inProcessPair, type Link, type SimOptions } from './transport.js';
import type { Ring } from './allreduce.js';

export function rankOf(stage: number, replica: number, stages: number): number {
  return replica * stages + stage;
}

/** Ranks `rank` needs a link to: its pipeline neighbours and its data-parallel ring neighbours. */
export function neighboursOf(rank: number, stages: number, replicas: number): number[] {
  const stage = rank % stages, replica = Math.floor(rank / stages);
  const out = new Set<number>();
  if (stage > 0) out.add(rank - 1);
  if (stage < stages - 1) out.add(rank + 1);
  if (replicas > 1) {
    out.add(rankOf(stage, (replica + 1) % replicas, stages));
    out.add(rankOf(stage, (replica + replicas - 1) % replicas, stages));
  }
  return [...out].sort((x, y) => x - y);
}

/** Name of a rank in messages. */
export function rankName(rank: number, stages: number, replicas: number, address?: string): string {
  const stage = rank % stages, replica = Math.floor(rank / stages);
  return `${replicas > 1 ? `stage ${stage} of replica ${replica}` : `stage ${stage}`}${address ? ` (${address})` : ''}`;
}

/** The prev/next/ring links of `rank` from a map of links by peer rank. */
export function stageLinks(rank: number, stages: number, replicas: number, links: Map<number, Link>): Pick<StageConfig, 'prev' | 'next' | 'ring'> {
  const stage = rank % stages, replica = Math.floor(rank / stages);
  const ring: Ring | undefined = replicas > 1
    ? { index: replica, size: replicas, next: links.get(rankOf(stage, (replica + 1) % replicas, stages))!, prev: links.get(rankOf(stage, (replica + replicas - 1) % replicas, stages))! }
    : undefined;
  return { prev: stage > 0 ? links.get(rank - 1) : undefined, next: stage < stages - 1 ? links.get(rank + 1) : undefined, ring };
}

export type InProcessConfig = Omit<StageConfig, 'stage' | 'replica' | 'prev' | 'next' | 'ring'>;

/**
 * Trains all stages x replicas in this process over in-process links; resolves with every
 * stage's result (index = rank), or rejects with the first stage error once all have stopped.
 */
export async function runInProcess(c: InProcessConfig, sim: SimOptions = {}): Promise<StageResult[]> {
  const S = c.ranges.length, R = c.replicas ?? 1;
  const links = Array.from({ length: S * R }, () => new Map<number, Link>());
  for (let r = 0; r < S * R; r++) {
    for (const q of neighboursOf(r, S, R)) {
      if (q <= r) continue;
      const [a, b] = inProcessPair(rankName(r, S, R), rankName(q, S, R), sim);
      links[r]!.set(q, a);
      links[q]!.set(r, b);
    }
  }
  const settled = await Promise.allSettled(links.map((l, r) =>
    runStage({ ...c, stage: r % S, replica: Math.floor(r / S), ...stageLinks(r, S, R, l) }).finally(() => {
      for (const link of l.values()) link.close();
    })));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<StageResult>).value);
}

/**
 * Slow links for real on one Linux machine: a chain of network namespaces, one per stage,
 * neighbours joined by veth pairs, shaped with `tc ... tbf` on both ends (qdiscs shape egress
 * only). Needs root or CAP_NET_ADMIN; `netnsUnavailable()` says why not where it fails.
 * Addresses 10.213.k.1 / 10.213.k.2 on the pair between stage k and k + 1.
 */
import { execFileSync } from 'node:child_process';

const sh = (cmd: string[]) => execFileSync(cmd[0]!, cmd.slice(1), { stdio: 'pipe' });

/** A chain of network namespaces, one per stage, neighbours joined by veth pairs. */
export class NetnsChain {
  readonly ns: string[];
  private readonly devs: [string, string][] = [];
  constructor(readonly stages: number) {
    const tag = `sg${process.pid % 100000}`;
    this.ns = Array.from({ length: stages }, (_, k) => `${tag}s${k}`);
    process.once('exit', this.cleanup);
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, this.onSignal);
    try {
      for (const n of this.ns) {
        sh(['ip', 'netns', 'add', n]);
        sh(['ip', '-n', n, 'link', 'set', 'lo', 'up']);
      }
      for (let k = 0; k + 1 < stages; k++) {
        const a = `${tag}v${k}a`, b = `${tag}v${k}b`;
        sh(['ip', 'link', 'add', a, 'netns', this.ns[k]!, 'type', 'veth', 'peer', 'name', b, 'netns', this.ns[k + 1]!]);
        sh(['ip', '-n', this.ns[k]!, 'addr', 'add', `10.213.${k}.1/30`, 'dev', a]);
        sh(['ip', '-n', this.ns[k + 1]!, 'addr', 'add', `10.213.${k}.2/30`, 'dev', b]);
        sh(['ip', '-n', this.ns[k]!, 'link', 'set', a, 'up']);
        sh(['ip', '-n', this.ns[k + 1]!, 'link', 'set', b, 'up']);
        this.devs.push([a, b]);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }
  /** Rank k listens on its own namespace; the lower rank of each pair dials the address on the pair's veth. */
  peers(port: number): string[] {
    return this.ns.map((_, k) => (k === 0 ? `10.213.0.1:${port}` : `10.213.${k - 1}.2:${port}`));
  }
  wrap(rank: number): string[] {
    return ['ip', 'netns', 'exec', this.ns[rank]!];
  }
  /** tbf on both ends of every veth (qdiscs shape egress), or none for 0. */
  shape(bitsPerSecond: number): void {
    this.devs.forEach(([a, b], k) => {
      for (const [n, dev] of [[this.ns[k]!, a], [this.ns[k + 1]!, b]] as const) {
        if (bitsPerSecond) {
          const burst = Math.max(32 * 1024, Math.round(bitsPerSecond / 8 / 250)); // 4 ms of traffic
          sh(['ip', 'netns', 'exec', n, 'tc', 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${bitsPerSecond}bit`, 'burst', String(burst), 'latency', '50ms']);
        } else {
          try {
            sh(['ip', 'netns', 'exec', n, 'tc', 'qdisc', 'del', 'dev', dev, 'root']);
          } catch {
            // no qdisc to remove
          }
        }
      }
    });
  }
  private readonly cleanup = () => this.close();
  private readonly onSignal = (sig: NodeJS.Signals) => {
    this.close();
    process.kill(process.pid, sig);
  };
  close(): void {
    process.off('exit', this.cleanup);
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.off(sig, this.onSignal);
    for (const n of this.ns) {
      try {
        sh(['ip', 'netns', 'del', n]); // deleting a namespace deletes its veth ends
      } catch {
        // already gone
      }
    }
  }
}

/** Why shaped links cannot be used here, or null when namespaces + tbf work. */
export function netnsUnavailable(): string | null {
  try {
    const probe = new NetnsChain(2);
    try {
      probe.shape(100e6);
    } finally {
      probe.close();
    }
    return null;
  } catch (e) {
    const err = e as Error & { stderr?: Buffer };
    return (err.stderr?.toString().trim() || err.message).split('\n')[0]!;
  }
}

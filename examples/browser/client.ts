/** The page's handle on the training worker: typed calls, progress events. */
import type { Command, Commands, Reply } from './protocol.js';

export type ProgressEvent = Extract<Reply, { event: string }>;

export class TrainerClient {
  private readonly worker: Worker;
  private next = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  /** Called with every progress/epoch event of a running train call. */
  onEvent: (e: ProgressEvent) => void = () => {};

  constructor(workerUrl: URL) {
    this.worker = new Worker(workerUrl, { type: 'module' });
    this.worker.onmessage = (e: MessageEvent<Reply>) => {
      const m = e.data;
      if ('event' in m) return this.onEvent(m);
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.ok) p?.resolve(m.value);
      else p?.reject(new Error(m.error));
    };
    this.worker.onerror = (e) => {
      for (const p of this.pending.values()) p.reject(new Error(`worker error: ${e.message}`));
      this.pending.clear();
    };
  }

  call<C extends Command>(cmd: C, args: Commands[C]['args']): Promise<Commands[C]['result']> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, cmd, args });
    });
  }
}

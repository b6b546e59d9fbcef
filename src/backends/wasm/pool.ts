/**
 * A persistent pool of worker threads running the kernel module on the arena's shared memory:
 * Node worker_threads, or Web Workers in a cross-origin-isolated page.
 *
 * The module is compiled once and sent with the memory to every worker, which instantiates it.
 * Work is described in a control block in the arena (one 64-byte line per hot word): the caller
 * writes one program per part (a list of kernel calls: op code, argument count, arguments), bumps
 * the generation word and notifies; each worker runs part (its index + 1) if there is one, adds to
 * the done counter and notifies; the calling thread runs part 0 itself and then waits on the done
 * counter (Atomics.wait where the thread may block: Node, a Web Worker; a browser's main thread
 * spins). A program of several calls is how a job does a layer's whole share of work (say im2col,
 * GEMM and bias for a block of images) behind one wake-up and one join. Node workers are unref'd,
 * so a parked pool never keeps the process alive. Web Workers only start once the creating
 * thread yields, so the browser pool starts asynchronously (`ThreadPool.startAsync`).
 */
import { arena } from '../../core/arena.js';
import type { KernelExports, KernelModule } from './loader.js';
import { node } from './node.js';

/** A kernel entry point a part can run (op codes index the module's function exports). */
export type PoolOp = keyof KernelExports;

/** The module's function exports in export order: the op codes shared with the workers. */
function opsOf(module: WebAssembly.Module): string[] {
  return WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => e.name);
}

// Control block layout, in Int32 words.
const GEN = 0; // generation: bumped once per job
const DONE = 16; // workers finished with the current job
const READY = 32; // workers instantiated (startup handshake)
const OP = 48; // 0 = run the programs, -1 = exit
const NPARTS = 49;
const FAILED = 50; // workers whose part threw
const PROGRAMS = 64; // part p's program at PROGRAMS + p * PROGRAM_WORDS: [calls, (op, argc, args...)*]
const PROGRAM_WORDS = 1024;

/** One kernel call of a part's program. */
export interface PoolCall {
  op: PoolOp;
  args: readonly number[];
}

/**
 * Body of each worker, as source (evaluated in the worker so that no file needs resolving): runs
 * parts until the exit op; `exit` ends the worker when instantiation failed.
 */
const WORKER_BODY = `(module, memory, ctl, index, ops, words, exit) => {
const w = new Int32Array(memory.buffer, ctl, words);
let fns;
try {
  const instance = new WebAssembly.Instance(module, {
    env: { memory, abort() { throw new Error('wasm kernel aborted'); } },
  });
  fns = ops.map((name) => instance.exports[name]);
} catch {
  Atomics.add(w, ${FAILED}, 1);
}
Atomics.add(w, ${READY}, 1);
Atomics.notify(w, ${READY});
if (!fns) return exit();
let seen = 0;
for (;;) {
  Atomics.wait(w, ${GEN}, seen);
  const gen = Atomics.load(w, ${GEN});
  if (gen === seen) continue;
  seen = gen;
  if (w[${OP}] < 0) break;
  const part = index + 1;
  if (part < w[${NPARTS}]) {
    try {
      let at = ${PROGRAMS} + part * ${PROGRAM_WORDS};
      const calls = w[at++];
      for (let c = 0; c < calls; c++) {
        const argc = w[at + 1];
        fns[w[at]].apply(null, w.subarray(at + 2, at + 2 + argc));
        at += 2 + argc;
      }
    } catch {
      Atomics.add(w, ${FAILED}, 1);
    }
  }
  Atomics.add(w, ${DONE}, 1);
  Atomics.notify(w, ${DONE});
}
exit();
}`;

/** What every worker receives. */
interface WorkerData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctl: number;
  index: number;
  ops: string[];
  words: number;
}

/** A started worker, Node's or the browser's. */
interface PoolWorker {
  terminate(): unknown;
}

/** Node: a worker_threads Worker evaluating the body on its workerData. */
function spawnNodeWorker(data: WorkerData): PoolWorker {
  const { Worker } = node!.workerThreads;
  const worker = new Worker(
    `const d = require('node:worker_threads').workerData;\n(${WORKER_BODY})(d.module, d.memory, d.ctl, d.index, d.ops, d.words, () => process.exit(1));`,
    { eval: true, workerData: data },
  );
  worker.unref();
  // Failures are reported through the control block; without a listener an 'error' event
  // would crash the process.
  worker.on('error', () => {});
  return worker;
}

/** The browser's Worker constructor, where there is one. */
type WebWorkerCtor = new (url: string) => PoolWorker & { postMessage(data: unknown): void };
const WebWorker = (globalThis as { Worker?: WebWorkerCtor }).Worker;

let webWorkerUrl: string | undefined;

/** Browser: a Web Worker from a blob: URL, running the body on the first message. */
function spawnWebWorker(data: WorkerData): PoolWorker {
  webWorkerUrl ??= URL.createObjectURL(
    new Blob([`onmessage = (e) => { onmessage = null; const d = e.data; (${WORKER_BODY})(d.module, d.memory, d.ctl, d.index, d.ops, d.words, () => close()); };`], { type: 'text/javascript' }),
  );
  const worker = new WebWorker!(webWorkerUrl);
  worker.postMessage(data);
  return worker;
}

/**
 * Whether this thread may block in Atomics.wait: Node, and browser workers; not a page's main
 * thread (there the caller spins on the done counter).
 */
const canBlock = node !== undefined || typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';

/** How long startup may take before the pool gives up and the backend stays single-threaded. */
const STARTUP_TIMEOUT_MS = 10_000;

export class ThreadPool {
  /** Threads a job can use: the workers plus the calling thread. */
  readonly threads: number;
  private readonly workers: PoolWorker[] = [];
  private readonly ctl: number;
  private readonly words: number;
  private readonly ops: string[];
  private closed = false;

  private constructor(
    private readonly kernels: KernelModule,
    workerCount: number,
    spawn: (data: WorkerData) => PoolWorker,
  ) {
    this.threads = workerCount + 1;
    this.words = PROGRAMS + this.threads * PROGRAM_WORDS;
    this.ops = opsOf(kernels.module);
    this.ctl = arena().alloc(this.words * 4);
    this.view().fill(0);
    for (let index = 0; index < workerCount; index++) {
      this.workers.push(spawn({ module: kernels.module, memory: arena().memory, ctl: this.ctl, index, ops: this.ops, words: this.words }));
    }
  }

  /** Workers that came up, or -1 when one failed to instantiate the module. */
  private readyCount(): number {
    const w = this.view();
    return w[FAILED]! > 0 ? -1 : Atomics.load(w, READY);
  }

  /**
   * A pool giving `threads` threads in all (threads - 1 workers), or undefined where there are no
   * worker threads or shared memory, or the workers do not come up.
   */
  static start(kernels: KernelModule, threads: number): ThreadPool | undefined {
    if (!node || threads < 2 || !arena().shared) return undefined;
    const pool = new ThreadPool(kernels, threads - 1, spawnNodeWorker);
    const w = pool.view();
    const deadline = performance.now() + STARTUP_TIMEOUT_MS;
    let ready: number;
    while ((ready = Atomics.load(w, READY)) < threads - 1) {
      const left = deadline - performance.now();
      if (left <= 0) {
        pool.close();
        return undefined;
      }
      Atomics.wait(w, READY, ready, left);
    }
    if (w[FAILED]! > 0) {
      pool.close();
      return undefined;
    }
    return pool;
  }

  /**
   * The browser's pool: `threads - 1` Web Workers, resolved once all have instantiated the
   * module; undefined without Web Workers or shared memory (a page that is not cross-origin
   * isolated), or when the workers do not come up.
   */
  static async startAsync(kernels: KernelModule, threads: number): Promise<ThreadPool | undefined> {
    if (node || !WebWorker || threads < 2 || !arena().shared) return undefined;
    const pool = new ThreadPool(kernels, threads - 1, spawnWebWorker);
    const deadline = performance.now() + STARTUP_TIMEOUT_MS;
    let ready: number;
    while ((ready = pool.readyCount()) >= 0 && ready < threads - 1 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (ready !== threads - 1) {
      pool.close();
      return undefined;
    }
    return pool;
  }

  /** A view of the control block (re-made per call: growing the memory replaces the buffer). */
  private view(): Int32Array {
    return new Int32Array(arena().buffer, this.ctl, this.words);
  }

  /**
   * Runs `op` once per argument row, rows spread over the threads (row 0 on the calling thread),
   * and returns when all are done. At most `threads` rows.
   */
  run(op: PoolOp, parts: readonly (readonly number[])[]): void {
    this.runPrograms(parts.map((args) => [{ op, args }]));
  }

  /**
   * Runs one program (kernel calls in order) per part, part 0 on the calling thread, and returns
   * when all are done. At most `threads` parts. Programs longer than a part's slot run in rounds
   * (each part's calls stay in order; parts must not depend on one another).
   */
  runPrograms(programs: readonly (readonly PoolCall[])[]): void {
    const next = programs.map(() => 0);
    do {
      const round = programs.map((calls, p) => {
        let words = 1, end = next[p]!;
        while (end < calls.length && words + 2 + calls[end]!.args.length <= PROGRAM_WORDS) words += 2 + calls[end++]!.args.length;
        if (end === next[p] && end < calls.length) throw new RangeError(`thread pool: a ${calls[end]!.op} call has too many arguments`);
        const slice = calls.slice(next[p], end);
        next[p] = end;
        return slice;
      });
      this.runJob(round, () => {
        for (const { op, args } of round[0]!) (this.kernels.exports[op] as (...args: number[]) => void)(...args);
      });
    } while (programs.some((calls, p) => next[p]! < calls.length));
  }

  /**
   * Wakes the parked workers without a job (the generation is unchanged, so they park again at
   * once), ahead of a job the caller is about to record (parallelFor): the slow part of waking a
   * thread whose CPU has gone idle overlaps the recording, and the job's own wake-up finds the CPU
   * still polling (the guest's or host's halt polling) or the worker not yet parked.
   */
  prepare(): void {
    if (!this.closed) Atomics.notify(this.view(), GEN);
  }

  /** Whether `calls` fit one part's program slot (so that they can run as one job). */
  fits(calls: readonly PoolCall[]): boolean {
    let words = 1;
    for (const c of calls) words += 2 + c.args.length;
    return words <= PROGRAM_WORDS;
  }

  /**
   * One job: programs[p] on worker p - 1 for p >= 1 (each must fit its slot) while `part0` runs
   * on the calling thread (programs[0] is not read); returns when all are done, rethrowing
   * part0's error or reporting a worker's after the join.
   */
  runJob(programs: readonly (readonly PoolCall[])[], part0: () => void): void {
    if (this.closed) throw new Error('thread pool: run() after close()');
    if (programs.length > this.threads) throw new RangeError(`thread pool: ${programs.length} parts for ${this.threads} threads`);
    const w = this.view();
    for (let p = 1; p < programs.length; p++) {
      if (!this.fits(programs[p]!)) throw new RangeError(`thread pool: part ${p}'s program does not fit one job`);
      let at = PROGRAMS + p * PROGRAM_WORDS;
      w[at++] = programs[p]!.length;
      for (const { op, args } of programs[p]!) {
        w[at] = this.ops.indexOf(op);
        w[at + 1] = args.length;
        w.set(args, at + 2);
        at += 2 + args.length;
      }
    }
    w[OP] = 0;
    w[NPARTS] = programs.length;
    w[FAILED] = 0;
    Atomics.store(w, DONE, 0);
    Atomics.add(w, GEN, 1);
    Atomics.notify(w, GEN);
    let mainError: unknown;
    try {
      part0();
    } catch (e) {
      mainError = e;
    }
    const workers = this.workers.length;
    let done: number;
    while ((done = Atomics.load(w, DONE)) < workers) if (canBlock) Atomics.wait(w, DONE, done);
    if (mainError) throw mainError;
    if (w[FAILED]! > 0) throw new Error(`thread pool: ${programs.slice(1).map((calls) => calls.map((c) => c.op).join('+')).join(', ')} failed in ${w[FAILED]} worker thread(s)`);
  }

  /** Stops and terminates the workers and frees the control block. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const w = this.view();
    w[OP] = -1;
    Atomics.add(w, GEN, 1);
    Atomics.notify(w, GEN);
    // Free the control block only once no worker can touch it any more.
    void Promise.all(this.workers.map((worker) => worker.terminate())).then(() => arena().free(this.ctl, this.words * 4));
  }
}

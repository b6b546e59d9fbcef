/**
 * The Node built-ins the wasm backend uses (reading the compiled kernels, worker threads, core
 * count), loaded without a static `import` so that the library still loads in browsers, where
 * this is undefined and the backend needs its bytes passed in and runs single-threaded.
 */
export interface NodeBuiltins {
  fs: typeof import('node:fs');
  workerThreads: typeof import('node:worker_threads');
  os: typeof import('node:os');
}

async function load(): Promise<NodeBuiltins | undefined> {
  if (typeof process === 'undefined' || !process.versions?.node) return undefined;
  // process.getBuiltinModule (Node >= 20.16) is synchronous; older Node 20 needs import().
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  if (get) {
    return {
      fs: get('node:fs') as NodeBuiltins['fs'],
      workerThreads: get('node:worker_threads') as NodeBuiltins['workerThreads'],
      os: get('node:os') as NodeBuiltins['os'],
    };
  }
  const [fs, workerThreads, os] = await Promise.all([import('node:fs'), import('node:worker_threads'), import('node:os')]);
  return { fs, workerThreads, os };
}

export const node: NodeBuiltins | undefined = await load();

/**
 * The Node built-ins the wasm backend uses (reading the compiled kernels, worker threads, core
 * count), obtained without a static `import` so that the library still loads in browsers, where
 * this is undefined and the backend needs its bytes passed in and runs single-threaded.
 * `process.getBuiltinModule` (Node >= 20.16) is synchronous, which keeps this module free of
 * top-level await (that would break `require()` of the library); older Node runs the reference backend.
 */
export interface NodeBuiltins {
  fs: typeof import('node:fs');
  workerThreads: typeof import('node:worker_threads');
  os: typeof import('node:os');
}

function load(): NodeBuiltins | undefined {
  if (typeof process === 'undefined') return undefined;
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  if (!get) return undefined;
  return {
    fs: get('node:fs') as NodeBuiltins['fs'],
    workerThreads: get('node:worker_threads') as NodeBuiltins['workerThreads'],
    os: get('node:os') as NodeBuiltins['os'],
  };
}

export const node: NodeBuiltins | undefined = load();

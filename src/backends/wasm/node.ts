/**
 * The Node built-ins the wasm backend uses (reading the compiled kernels, worker threads, core
 * count, V8 flags), obtained without a static `import` so that the library still loads in browsers, where
 * this is undefined and the backend needs its bytes passed in and runs single-threaded.
 * `process.getBuiltinModule` (Node >= 20.16) is synchronous, which keeps this module free of
 * top-level await (that would break `require()` of the library); older Node runs the reference backend.
 */
export interface NodeBuiltins {
  fs: typeof import('node:fs');
  workerThreads: typeof import('node:worker_threads');
  os: typeof import('node:os');
  v8: typeof import('node:v8');
}

function load(): NodeBuiltins | undefined {
  if (typeof process === 'undefined') return undefined;
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  if (!get) return undefined;
  return {
    fs: get('node:fs') as NodeBuiltins['fs'],
    workerThreads: get('node:worker_threads') as NodeBuiltins['workerThreads'],
    os: get('node:os') as NodeBuiltins['os'],
    v8: get('node:v8') as NodeBuiltins['v8'],
  };
}

export const node: NodeBuiltins | undefined = load();

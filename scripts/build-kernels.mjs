// Compiles kernels/*.ts (AssemblyScript) to build/*.wasm. Filled in by the wasm backend.
console.log('build-kernels: no kernels yet');

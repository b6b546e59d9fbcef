/**
 * Every op module, registered. The op registry fills as modules that call `defineOp` are
 * imported; this is the one list of them (the engine's ops and the quantization ops). The library
 * entry and the generated registry walks (gradcheck, backend parity, save policy) import it, and
 * each walk fails when an op registered here was not visited, so a new op module added here
 * cannot skip them. A module that defines ops and is missing here is caught by that same check
 * in any walk that imports it.
 */
import './index.js';
import '../quant/ops.js';

export { allOps, getOp, runOp, type OpDef } from './registry.js';

/**
 * @trainfleet/kernels: the WebAssembly SIMD kernels, the memory they share with their callers, and the count of which path each call took.
 * It may import proto; other packages import only what is re-exported here, by name.
 */
export { freeKernelArray, kernelFloat32Array, kernelMemory, kernelPointer, kernelUint16Array } from "./kernel-memory.js";
export type { KernelName } from "./kernel-path.js";
export { kernelCalls, kernelCallsDuring } from "./kernel-path.js";
export type { WasmKernels } from "./wasm-kernels.js";
export { kernelAddressTable, kernelOperandsCompatible, wasmKernels } from "./wasm-kernels.js";

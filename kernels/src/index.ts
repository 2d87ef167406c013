export { freeKernelArray, kernelFloat32Array, kernelMemory, kernelPointer, kernelUint16Array } from "./kernel-memory.js";
export type { KernelName } from "./kernel-path.js";
export { kernelCalls } from "./kernel-path.js";
export type { WasmKernels } from "./wasm-kernels.js";
export { kernelAddressTable, kernelOperandsCompatible, wasmKernels } from "./wasm-kernels.js";

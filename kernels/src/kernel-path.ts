/**
 * Which path each kernel took: the WebAssembly SIMD one, or the JavaScript loop (operands
 * outside the kernel memory, or no WebAssembly). A silent fallback to JavaScript is only
 * a slowdown, so tests and benchmarks read these counts to see which one ran.
 */
export type KernelName =
  | "averageInRankOrder"
  | "checkFinite"
  | "sgd"
  | "sgdMomentum"
  | "adam"
  | "encodeBfloat16"
  | "decodeBfloat16"
  | "encodeFloat16"
  | "decodeFloat16";

export interface KernelPathCounts {
  wasm: number;
  js: number;
}

const names: readonly KernelName[] = [
  "averageInRankOrder",
  "checkFinite",
  "sgd",
  "sgdMomentum",
  "adam",
  "encodeBfloat16",
  "decodeBfloat16",
  "encodeFloat16",
  "decodeFloat16",
];

/** Calls per kernel and path since the process started (or the last reset). */
export const kernelCalls: Readonly<Record<KernelName, KernelPathCounts>> = Object.fromEntries(
  names.map((name) => [name, { wasm: 0, js: 0 }]),
) as Record<KernelName, KernelPathCounts>;

export function resetKernelCalls(): void {
  for (const name of names) {
    kernelCalls[name].wasm = 0;
    kernelCalls[name].js = 0;
  }
}

/** Runs `run` and returns how many calls of `kernel` took each path meanwhile. */
export function kernelCallsDuring(kernel: KernelName, run: () => void): KernelPathCounts {
  const before = { ...kernelCalls[kernel] };
  run();
  return { wasm: kernelCalls[kernel].wasm - before.wasm, js: kernelCalls[kernel].js - before.js };
}

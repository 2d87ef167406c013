/**
 * The WebAssembly SIMD kernels (kernels.wat), instantiated on the process-wide kernel
 * memory. Low level: arguments are byte addresses in that memory (kernelPointer) and
 * element counts that are multiples of 4; the typed-array functions that call these
 * (averageInRankOrder, the optimizers, checkFinite, the 16-bit codecs) check their
 * operands, run the JavaScript loop on the tail, and fall back to it entirely for arrays
 * outside the kernel memory.
 */
import { kernelsWasmBase64 } from "./gen/kernels-wasm.js";
import { kernelMemory } from "./kernel-memory.js";
import { wasmApi } from "./wasm-api.js";

export interface WasmKernels {
  /** out = f32(a + b) / 2 */
  average2(a: number, b: number, out: number, count: number): void;
  /** out = f32(f32(a + b) + c) / 3 */
  average3(a: number, b: number, c: number, out: number, count: number): void;
  /** table: n addresses (int32), rank 0 first; n >= 2. */
  averageN(table: number, n: number, out: number, count: number): void;
  /** 1 if any of the float32s is NaN or infinite. */
  anyNonFinite(values: number, count: number): number;
  /** Updates read params (and state) and write out (and the next state); out may equal params. */
  sgd(params: number, gradient: number, out: number, count: number, learningRate: number): void;
  sgdMomentum(
    params: number,
    gradient: number,
    velocity: number,
    out: number,
    velocityOut: number,
    count: number,
    learningRate: number,
    momentum: number,
  ): void;
  adam(
    params: number,
    gradient: number,
    m: number,
    v: number,
    out: number,
    mOut: number,
    vOut: number,
    count: number,
    learningRate: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    correction1: number,
    correction2: number,
    epsilon: number,
  ): void;
  /** float32 -> 16-bit: src holds count float32s, dst count uint16s. */
  encodeBfloat16(src: number, dst: number, count: number): void;
  encodeFloat16(src: number, dst: number, count: number): void;
  /** 16-bit -> float32: src holds count uint16s, dst count float32s. */
  decodeBfloat16(src: number, dst: number, count: number): void;
  decodeFloat16(src: number, dst: number, count: number): void;
}

let kernels: WasmKernels | null | undefined;

/** The kernels, or undefined where they cannot run (no WebAssembly SIMD or threads, or no kernel memory). */
export function wasmKernels(): WasmKernels | undefined {
  if (kernels === undefined) {
    kernels = null;
    const memory = kernelMemory();
    if (memory !== undefined) {
      try {
        const module = new wasmApi.Module(Buffer.from(kernelsWasmBase64, "base64"));
        kernels = new wasmApi.Instance(module, { env: { memory: memory.memory } }).exports as unknown as WasmKernels;
      } catch {
        kernels = null;
      }
    }
  }
  return kernels ?? undefined;
}

let table: Int32Array | undefined;

/** A scratch int32 array in the kernel memory of at least `length` entries, for averageN's table of addresses. */
export function kernelAddressTable(length: number): Int32Array {
  if (table === undefined || table.length < length) {
    const memory = kernelMemory()!;
    if (table !== undefined) memory.free(table);
    table = memory.int32(Math.max(length, 16));
  }
  return table;
}

/**
 * Whether a kernel may work on [a, a + aBytes) and [b, b + bBytes) together: they must be
 * disjoint, or (for kernels that go element by element at one width) start at the same
 * address, which is what the JavaScript loops' in-place use amounts to.
 */
export function kernelOperandsCompatible(a: number, aBytes: number, b: number, bBytes: number, sameStartAllowed: boolean): boolean {
  if (a + aBytes <= b || b + bBytes <= a) return true;
  return sameStartAllowed && a === b;
}

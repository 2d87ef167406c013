/**
 * The reduction of one chunk: contributions summed strictly in rank order, then divided by
 * the number of ranks. Float addition is not associative, so a fixed order is what makes
 * the result independent of arrival order and equal, bit for bit, to a single-process
 * reference that sums the same way.
 *
 * When every array is in the kernel memory (kernelMemory() in @trainfleet/proto) the sum
 * runs as WebAssembly SIMD: f32x4.add in rank order, then f32x4.div by n, the same bits as
 * the JavaScript below (float32 + and / done in double and rounded once are the float32
 * operations). The JavaScript loop is the specification, the fallback for other arrays,
 * and does the tail of fewer than 4 elements.
 */
import { kernelAddressTable, kernelCalls, kernelOperandsCompatible, kernelPointer, wasmKernels } from "@trainfleet/kernels";

/** Averages elements [from, to) of the contributions into out[0, to - from). */
export function averageInRankOrder(contributions: readonly Float32Array[], from: number, to: number, out: Float32Array): void {
  let done = 0;
  if (contributions.length >= 2) done = averageInWasm(contributions, from, to, out);
  // One rank is a copy (out.set), which needs no kernel.
  else kernelCalls.averageInRankOrder.js++;
  if (from + done < to) averageInRankOrderJs(contributions, from + done, to, out.subarray(done));
}

/** The WebAssembly kernel on the first multiple of 4 elements, when it can run; returns how many it did. */
function averageInWasm(contributions: readonly Float32Array[], from: number, to: number, out: Float32Array): number {
  const n = contributions.length;
  const target = kernelPointer(out, 0, to - from);
  const kernels = target < 0 ? undefined : wasmKernels();
  const bytes = (to - from) * 4;
  let pointers: number[] | undefined = kernels === undefined ? undefined : [];
  for (let rank = 0; rank < n && pointers !== undefined; rank++) {
    const pointer = kernelPointer(contributions[rank]!, from, to);
    // Element by element, so out may be one of the contributions (same place), not overlap one otherwise.
    if (pointer < 0 || !kernelOperandsCompatible(pointer, bytes, target, bytes, true)) pointers = undefined;
    else pointers.push(pointer);
  }
  if (kernels === undefined || pointers === undefined) {
    kernelCalls.averageInRankOrder.js++;
    return 0;
  }
  kernelCalls.averageInRankOrder.wasm++;
  const count = (to - from) & ~3;
  if (count === 0) return 0;
  if (n === 2) kernels.average2(pointers[0]!, pointers[1]!, target, count);
  else if (n === 3) kernels.average3(pointers[0]!, pointers[1]!, pointers[2]!, target, count);
  else {
    const table = kernelAddressTable(n);
    table.set(pointers);
    kernels.averageN(table.byteOffset, n, target, count);
  }
  return count;
}

/** The specification: one pass over memory, float32 rounding after each addition; out[0, to - from). */
export function averageInRankOrderJs(contributions: readonly Float32Array[], from: number, to: number, out: Float32Array): void {
  const n = contributions.length;
  const [a, b, c] = contributions;
  if (a === undefined) throw new Error("averageInRankOrder: no contributions");
  // One pass over memory. Math.fround after each addition is what float32 addition is,
  // and keeps the sum's order fixed: ((a + b) + c) + ...
  if (n === 1) out.set(a.subarray(from, to));
  else if (n === 2) for (let i = from; i < to; i++) out[i - from] = Math.fround(a[i]! + b![i]!) / 2;
  else if (n === 3) for (let i = from; i < to; i++) out[i - from] = Math.fround(Math.fround(a[i]! + b![i]!) + c![i]!) / 3;
  else {
    for (let i = from; i < to; i++) {
      let sum = a[i]!;
      for (let rank = 1; rank < n; rank++) sum = Math.fround(sum + contributions[rank]![i]!);
      out[i - from] = sum / n;
    }
  }
}

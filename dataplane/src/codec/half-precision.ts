/**
 * float32 <-> bfloat16 and float16 conversions for the wire, with round-to-nearest-even.
 * Pure integer arithmetic on the bit patterns: decoding float16 by multiplying by 2^112
 * would feed denormals to the CPU's slow path, and bit operations also keep every
 * platform's result identical.
 *
 * When both arrays are in the kernel memory (kernels/kernel-memory.ts) the conversion runs
 * as WebAssembly SIMD (kernels/kernels.wat), which gives the same bits; the JavaScript
 * loops below are the specification, the fallback for other arrays, and do the tail of
 * fewer than 4 elements.
 */
import { kernelCalls, kernelOperandsCompatible, kernelPointer, wasmKernels } from "@trainfleet/kernels";

type Kernel = "encodeBfloat16" | "encodeFloat16" | "decodeBfloat16" | "decodeFloat16";

/** Encodes values[from, to) into out[0, to - from). */
export function encodeBfloat16(values: Float32Array, from: number, to: number, out: Uint16Array): void {
  const done = encodeInWasm("encodeBfloat16", values, from, to, out);
  if (done === 0) encodeBfloat16Js(values, from, to, out);
  else if (from + done < to) encodeBfloat16Js(values, from + done, to, out.subarray(done));
}

export function decodeBfloat16(input: Uint16Array, out: Float32Array, at: number): void {
  const done = decodeInWasm("decodeBfloat16", input, out, at);
  if (done === 0) decodeBfloat16Js(input, out, at);
  else if (done < input.length) decodeBfloat16Js(input.subarray(done), out, at + done);
}

export function encodeFloat16(values: Float32Array, from: number, to: number, out: Uint16Array): void {
  const done = encodeInWasm("encodeFloat16", values, from, to, out);
  if (done === 0) encodeFloat16Js(values, from, to, out);
  else if (from + done < to) encodeFloat16Js(values, from + done, to, out.subarray(done));
}

export function decodeFloat16(input: Uint16Array, out: Float32Array, at: number): void {
  const done = decodeInWasm("decodeFloat16", input, out, at);
  if (done === 0) decodeFloat16Js(input, out, at);
  else if (done < input.length) decodeFloat16Js(input.subarray(done), out, at + done);
}

/** Runs the WebAssembly kernel on the first multiple of 4 elements when it can; returns how many it did. */
function encodeInWasm(kernel: Kernel, values: Float32Array, from: number, to: number, out: Uint16Array): number {
  const src = kernelPointer(values, from, to);
  const dst = src < 0 ? -1 : kernelPointer(out, 0, to - from);
  const kernels = dst < 0 ? undefined : wasmKernels();
  if (kernels === undefined || !kernelOperandsCompatible(src, (to - from) * 4, dst, (to - from) * 2, false)) {
    kernelCalls[kernel].js++;
    return 0;
  }
  kernelCalls[kernel].wasm++;
  const count = (to - from) & ~3;
  if (count > 0) kernels[kernel](src, dst, count);
  return count;
}

function decodeInWasm(kernel: Kernel, input: Uint16Array, out: Float32Array, at: number): number {
  const src = kernelPointer(input, 0, input.length);
  const dst = src < 0 ? -1 : kernelPointer(out, at, at + input.length);
  const kernels = dst < 0 ? undefined : wasmKernels();
  if (kernels === undefined || !kernelOperandsCompatible(src, input.length * 2, dst, input.length * 4, false)) {
    kernelCalls[kernel].js++;
    return 0;
  }
  kernelCalls[kernel].wasm++;
  const count = input.length & ~3;
  if (count > 0) kernels[kernel](src, dst, count);
  return count;
}

// The JavaScript loops: the specification of the conversions.

/** Encodes values[from, to) into out[0, to - from). */
export function encodeBfloat16Js(values: Float32Array, from: number, to: number, out: Uint16Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = from; i < to; i++) {
    const x = bits[i]!;
    // NaN stays NaN (a quiet one); everything else rounds to nearest, ties to even.
    out[i - from] = (x & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}

export function decodeBfloat16Js(input: Uint16Array, out: Float32Array, at: number): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < input.length; i++) bits[at + i] = input[i]! << 16;
}

export function encodeFloat16Js(values: Float32Array, from: number, to: number, out: Uint16Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = from; i < to; i++) out[i - from] = float32BitsToFloat16(bits[i]!);
}

export function decodeFloat16Js(input: Uint16Array, out: Float32Array, at: number): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < input.length; i++) bits[at + i] = float16ToFloat32Bits(input[i]!);
}

function float32BitsToFloat16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal float16 (or zero): shift the mantissa with its implicit 1, rounding.
    if (e < -10) return sign;
    const m = mantissa | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

function float16ToFloat32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent - 15 + 127) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal: normalise the mantissa into float32's exponent range.
  let m = mantissa;
  let e = -14;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | ((e + 127) << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

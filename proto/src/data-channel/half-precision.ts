/**
 * float32 <-> bfloat16 and float16 conversions for the wire, with round-to-nearest-even.
 * Pure integer arithmetic on the bit patterns: decoding float16 by multiplying by 2^112
 * would feed denormals to the CPU's slow path, and bit operations also keep every
 * platform's result identical.
 */

/** Encodes values[from, to) into out[0, to - from). */
export function encodeBfloat16(values: Float32Array, from: number, to: number, out: Uint16Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = from; i < to; i++) {
    const x = bits[i]!;
    // NaN stays NaN (a quiet one); everything else rounds to nearest, ties to even.
    out[i - from] = (x & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}

export function decodeBfloat16(input: Uint16Array, out: Float32Array, at: number): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < input.length; i++) bits[at + i] = input[i]! << 16;
}

export function encodeFloat16(values: Float32Array, from: number, to: number, out: Uint16Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = from; i < to; i++) out[i - from] = float32BitsToFloat16(bits[i]!);
}

export function decodeFloat16(input: Uint16Array, out: Float32Array, at: number): void {
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

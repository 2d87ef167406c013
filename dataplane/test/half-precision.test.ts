import { describe, expect, it } from "vitest";
import { decodeBfloat16, decodeFloat16, encodeBfloat16, encodeFloat16 } from "../src/codec/half-precision.js";

/** Round half to even, in float64 (exact for the values used here). */
function roundTiesEven(v: number): number {
  const floor = Math.floor(v);
  const rest = v - floor;
  return rest < 0.5 ? floor : rest > 0.5 ? floor + 1 : floor % 2 === 0 ? floor : floor + 1;
}

/** An independent reference: x rounded to `bits` significant bits (and float16's range when given). */
function reference(x: number, bits: number, minNormalExponent: number, max: number | undefined): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const exponent = Math.max(Math.floor(Math.log2(Math.abs(x))), minNormalExponent);
  const ulp = 2 ** (exponent - (bits - 1));
  const rounded = roundTiesEven(x / ulp) * ulp;
  if (max !== undefined && Math.abs(rounded) > max) return Math.sign(x) * Infinity;
  // An underflow to zero keeps its sign, as IEEE rounding does.
  return rounded === 0 ? Math.sign(x) * 0 : rounded;
}

function roundTrip(values: Float32Array, encode: typeof encodeBfloat16, decode: typeof decodeBfloat16): Float32Array {
  const wire = new Uint16Array(values.length);
  encode(values, 0, values.length, wire);
  const out = new Float32Array(values.length);
  decode(wire, out, 0);
  return out;
}

function samples(): Float32Array {
  const values: number[] = [
    0,
    -0,
    1,
    -1,
    0.1,
    65504,
    65519,
    65520,
    -65520,
    1e-8,
    6e-8,
    2 ** -24,
    2 ** -25,
    3 * 2 ** -26,
    1e30,
    -3.4e38,
    1.00390625,
    1.005859375,
  ];
  let seed = 12345;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 20000; i++) values.push((random() - 0.5) * 2 ** Math.floor(random() * 80 - 40));
  return Float32Array.from(values);
}

describe("bfloat16", () => {
  it("rounds every value to nearest even with 8 significant bits", () => {
    const values = samples();
    const out = roundTrip(values, encodeBfloat16, decodeBfloat16);
    values.forEach((x, i) => expect(out[i]).toBe(Math.fround(reference(x, 8, -126, undefined))));
  });

  it("keeps infinities and NaN", () => {
    const out = roundTrip(Float32Array.of(Infinity, -Infinity, NaN), encodeBfloat16, decodeBfloat16);
    expect([out[0], out[1], Number.isNaN(out[2])]).toEqual([Infinity, -Infinity, true]);
  });
});

describe("float16", () => {
  it("rounds every value to nearest even with 11 significant bits, subnormals and overflow included", () => {
    const values = samples();
    const out = roundTrip(values, encodeFloat16, decodeFloat16);
    values.forEach((x, i) => expect(out[i]).toBe(reference(x, 11, -14, 65504)));
  });

  it("decodes and re-encodes every one of the 65536 float16 values to itself (NaNs stay NaN)", () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const decoded = new Float32Array(65536);
    decodeFloat16(all, decoded, 0);
    const again = new Uint16Array(65536);
    encodeFloat16(decoded, 0, 65536, again);
    for (let h = 0; h < 65536; h++) {
      const nan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (nan) expect(Number.isNaN(decoded[h])).toBe(true);
      else expect(again[h]).toBe(h);
    }
  });
});

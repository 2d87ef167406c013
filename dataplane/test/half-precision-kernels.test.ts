import { kernelCallsDuring, kernelMemory, wasmKernels } from "@trainfleet/kernels";
import { seededRandom } from "@trainfleet/testing/seeded-random";
import { describe, expect, it } from "vitest";
import {
  decodeBfloat16,
  decodeBfloat16Js,
  decodeFloat16,
  decodeFloat16Js,
  encodeBfloat16,
  encodeBfloat16Js,
  encodeFloat16,
  encodeFloat16Js,
} from "../src/codec/half-precision.js";

const memory = kernelMemory()!;

function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

function hex(value: number, digits: number): string {
  return `0x${value.toString(16).padStart(digits, "0")}`;
}

/** Fails on the first element where the two differ, naming it and its input. */
function expectSameBits(actual: Uint32Array | Uint16Array, expected: Uint32Array | Uint16Array, input: (i: number) => string): void {
  expect(actual.length).toBe(expected.length);
  const digits = actual.BYTES_PER_ELEMENT * 2;
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) {
      expect.fail(`element ${i} (input ${input(i)}): wasm gave ${hex(actual[i]!, digits)}, JavaScript ${hex(expected[i]!, digits)}`);
    }
  }
}

/**
 * 2^20 float32 bit patterns: both signs, all 256 exponents, and 2048 mantissas that
 * straddle every rounding boundary either format has (float16 normals drop 13 bits,
 * float16 subnormals 14..24, bfloat16 16): for each number of dropped bits s, kept parts
 * near 0 and near the top with dropped parts 0, 1, half - 1, half, half + 1 and all ones,
 * so ties with an even and an odd kept part, and carries into the exponent; the rest random.
 */
function structuredFloat32Bits(): Uint32Array {
  const mantissas = new Set<number>([0, 1, 2, 0x7fffff, 0x400000, 0x3fffff, 0x200000, 0x400001]);
  for (const s of [13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]) {
    const half = 2 ** (s - 1);
    const top = Math.floor(0x7fffff / 2 ** s);
    for (const kept of [0, 1, 2, 3, top - 1, top]) {
      for (const rest of [0, 1, half - 1, half, half + 1, 2 ** s - 1]) {
        const m = kept * 2 ** s + rest;
        if (m <= 0x7fffff && m >= 0) mantissas.add(m);
      }
    }
  }
  const next = seededRandom(7);
  while (mantissas.size < 2048) mantissas.add(next() & 0x7fffff);
  const list = [...mantissas].slice(0, 2048);
  const bits = new Uint32Array(2 * 256 * 2048);
  let i = 0;
  for (const sign of [0, 0x80000000])
    for (let exponent = 0; exponent < 256; exponent++) for (const m of list) bits[i++] = (sign | (exponent << 23) | m) >>> 0;
  return bits;
}

describe("kernel memory growth", () => {
  it("keeps the process memory's views, and the kernels working on them, across a grow", () => {
    const input = memory.uint16(1024);
    const out = memory.float32(1024);
    input.forEach((_, i) => (input[i] = i * 37));
    const size = memory.byteLength;
    // More than is left: the memory grows.
    const filler = memory.uint8(size);
    expect(memory.byteLength).toBeGreaterThan(size);
    expect(filler.buffer).not.toBe(input.buffer);
    const ran = kernelCallsDuring("decodeBfloat16", () => decodeBfloat16(input, out, 0));
    expect(ran).toEqual({ wasm: 1, js: 0 });
    bitsOf(out).forEach((bits, i) => expect(bits).toBe(((i * 37) << 16) >>> 0));
    memory.free(filler);
    memory.free(input);
    memory.free(out);
  });
});

describe("16-bit codec kernels", () => {
  it("instantiate", () => {
    expect(wasmKernels()).toBeDefined();
  });

  it("decode all 65536 bfloat16 and float16 values to the JavaScript's bits", () => {
    const input = memory.uint16(65536);
    input.forEach((_, i) => (input[i] = i));
    const out = memory.float32(65536);
    const expected = new Float32Array(65536);
    for (const [name, decode, reference] of [
      ["decodeBfloat16", decodeBfloat16, decodeBfloat16Js],
      ["decodeFloat16", decodeFloat16, decodeFloat16Js],
    ] as const) {
      out.fill(0);
      expect(kernelCallsDuring(name, () => decode(input, out, 0))).toEqual({ wasm: 1, js: 0 });
      reference(Uint16Array.from(input), expected, 0);
      expectSameBits(bitsOf(out), bitsOf(expected), (i) => `${name} ${hex(i, 4)}`);
    }
    memory.free(input);
    memory.free(out);
  });

  it("encode 2^20 structured float32 values (every exponent, mantissas at every rounding boundary) to the JavaScript's bits", () => {
    const bits = structuredFloat32Bits();
    expect(bits.length).toBe(2 ** 20);
    const values = memory.float32(bits.length);
    bitsOf(values).set(bits);
    const out = memory.uint16(bits.length);
    const expected = new Uint16Array(bits.length);
    const plain = new Float32Array(bits.buffer);
    for (const [name, encode, reference] of [
      ["encodeBfloat16", encodeBfloat16, encodeBfloat16Js],
      ["encodeFloat16", encodeFloat16, encodeFloat16Js],
    ] as const) {
      out.fill(0xdead);
      expect(kernelCallsDuring(name, () => encode(values, 0, values.length, out))).toEqual({ wasm: 1, js: 0 });
      reference(plain, 0, plain.length, expected);
      expectSameBits(out, expected, (i) => `${name} ${hex(bits[i]!, 8)}`);
    }
    memory.free(values);
    memory.free(out);
  });

  it("encode random bit patterns to the JavaScript's bits", () => {
    const next = seededRandom(99);
    const bits = Uint32Array.from({ length: 1 << 18 }, () => next());
    const values = memory.float32(bits.length);
    bitsOf(values).set(bits);
    const out = memory.uint16(bits.length);
    const expected = new Uint16Array(bits.length);
    for (const [encode, reference] of [
      [encodeBfloat16, encodeBfloat16Js],
      [encodeFloat16, encodeFloat16Js],
    ] as const) {
      encode(values, 0, values.length, out);
      reference(new Float32Array(bits.buffer), 0, bits.length, expected);
      expectSameBits(out, expected, (i) => hex(bits[i]!, 8));
    }
    memory.free(values);
    memory.free(out);
  });

  it("handle odd lengths and unaligned offsets, writing exactly their range", () => {
    const next = seededRandom(5);
    for (const length of [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 4 * 37 + 3]) {
      for (const from of [0, 1, 2, 3, 5]) {
        // Source: float32s at [from, from + length) of a longer array.
        const values = memory.float32(from + length + 3);
        const sourceBits = bitsOf(values);
        for (let i = 0; i < sourceBits.length; i++) sourceBits[i] = next() % 3 === 0 ? next() : (next() & 0x87ffffff) | 0x38000000;
        const plain = values.slice();
        // Encode into out[1, 1 + length) of a longer array: the guards around must stay.
        const out = memory.uint16(length + 6);
        const expected = new Uint16Array(length + 6);
        for (const [name, encode, reference] of [
          ["encodeBfloat16", encodeBfloat16, encodeBfloat16Js],
          ["encodeFloat16", encodeFloat16, encodeFloat16Js],
        ] as const) {
          out.fill(0xbeef);
          expected.fill(0xbeef);
          expect(kernelCallsDuring(name, () => encode(values, from, from + length, out.subarray(1, 1 + length))).wasm).toBe(1);
          reference(plain, from, from + length, expected.subarray(1, 1 + length));
          expectSameBits(out, expected, (i) => `${name} length ${length} from ${from} at ${i}`);
        }
        // Decode back into out32[at, at + length) of a longer array.
        const wire = memory.uint16(length);
        wire.forEach((_, i) => (wire[i] = next()));
        const at = (from * 3) % 5;
        const out32 = memory.float32(at + length + 5);
        const expected32 = new Float32Array(at + length + 5);
        for (const [name, decode, reference] of [
          ["decodeBfloat16", decodeBfloat16, decodeBfloat16Js],
          ["decodeFloat16", decodeFloat16, decodeFloat16Js],
        ] as const) {
          bitsOf(out32).fill(0x12345678);
          bitsOf(expected32).fill(0x12345678);
          expect(kernelCallsDuring(name, () => decode(wire, out32, at)).wasm).toBe(1);
          reference(wire.slice(), expected32, at);
          expectSameBits(bitsOf(out32), bitsOf(expected32), (i) => `${name} length ${length} at ${at}: ${i}`);
        }
        for (const view of [values, out, wire, out32]) memory.free(view);
      }
    }
  });

  it("run the JavaScript for arrays outside the kernel memory, or for ranges the kernel cannot take", () => {
    const values = Float32Array.of(1, 2, 3, 4, 5);
    const out = new Uint16Array(5);
    expect(kernelCallsDuring("encodeFloat16", () => encodeFloat16(values, 0, 5, out))).toEqual({ wasm: 0, js: 1 });
    expect(Array.from(out)).toEqual([0x3c00, 0x4000, 0x4200, 0x4400, 0x4500]);
    const inMemory = memory.float32(5);
    inMemory.set(values);
    // Output on the heap: JavaScript.
    expect(kernelCallsDuring("encodeBfloat16", () => encodeBfloat16(inMemory, 0, 5, out))).toEqual({ wasm: 0, js: 1 });
    // Output too short for the range: JavaScript (which drops what does not fit).
    const short = memory.uint16(2);
    expect(kernelCallsDuring("encodeBfloat16", () => encodeBfloat16(inMemory, 0, 5, short))).toEqual({ wasm: 0, js: 1 });
    // Decoding past the end of out: JavaScript too.
    const wire = memory.uint16(4);
    expect(kernelCallsDuring("decodeFloat16", () => decodeFloat16(wire, inMemory, 3))).toEqual({ wasm: 0, js: 1 });
    for (const view of [inMemory, short, wire]) memory.free(view);
  });
});

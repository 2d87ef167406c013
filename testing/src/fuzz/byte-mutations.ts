/**
 * Bytes for fuzzing a decoder: valid inputs damaged the ways files and wire messages get
 * damaged (a flipped bit, a byte or a 32-bit word set to an edge value, bytes inserted,
 * dropped, repeated, a truncated tail), and plain random bytes. Damage near a valid input
 * reaches far deeper into a decoder than random bytes, which most decoders refuse at the
 * first byte. A mutation's position is taken modulo the input's length, so one shrinks
 * towards the start of the input and towards fewer, smaller changes.
 */
import type { Arbitrary } from "fast-check";
import fc from "fast-check";

export type ByteMutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; value: number }
  /** A 32-bit word at `at`, little-endian: lengths, counts and offsets are words in most formats. */
  | { kind: "word"; at: number; value: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; count: number }
  | { kind: "repeat"; at: number; count: number }
  | { kind: "truncate"; at: number };

/** Byte values that decoders get wrong: zero, all ones, sign and varint continuation bits. */
const edgeBytes = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];

/** 32-bit words that decoders get wrong: zero, tiny, huge, negative, float32 NaN and infinity. */
const edgeWords = [0, 1, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x7fc00000, 0x7f800000, 0xff800000];

export const byteMutation: Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(...edgeBytes), fc.nat({ max: 255 })) }),
  fc.record({
    kind: fc.constant("word" as const),
    at: fc.nat(),
    value: fc.oneof(fc.constantFrom(...edgeWords), fc.nat({ max: 0xffffffff })),
  }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant("repeat" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
);

/** `input` with `mutation` applied (a new array; `input` is not changed). */
export function mutate(input: Uint8Array, mutation: ByteMutation): Uint8Array {
  const length = input.byteLength;
  const at = mutation.at % (length + 1);
  const inside = length === 0 ? 0 : mutation.at % length;
  switch (mutation.kind) {
    case "flip":
    case "set":
    case "word": {
      if (length === 0) return input.slice();
      const out = input.slice();
      if (mutation.kind === "flip") out[inside] = out[inside]! ^ (1 << mutation.bit);
      else if (mutation.kind === "set") out[inside] = mutation.value;
      else for (let i = 0; i < 4 && inside + i < length; i++) out[inside + i] = (mutation.value >>> (8 * i)) & 0xff;
      return out;
    }
    case "insert":
      return concat(input.subarray(0, at), mutation.bytes, input.subarray(at));
    case "delete":
      return concat(input.subarray(0, at), input.subarray(at + mutation.count));
    case "repeat":
      return concat(input.subarray(0, at + mutation.count), input.subarray(at));
    case "truncate":
      return input.slice(0, at);
  }
}

/** One of `seeds` with one to `maxMutations` mutations applied in turn. */
export function mutatedBytes(seeds: readonly Uint8Array[], maxMutations = 4): Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.constantFrom(...seeds), fc.array(byteMutation, { minLength: 1, maxLength: maxMutations }))
    .map(([seed, mutations]) => mutations.reduce(mutate, seed));
}

/** Mostly damaged seeds, sometimes random bytes of up to `maxRandomBytes`. */
export function fuzzBytes(seeds: readonly Uint8Array[], maxRandomBytes = 256): Arbitrary<Uint8Array> {
  return fc.oneof({ weight: 1, arbitrary: fc.uint8Array({ maxLength: maxRandomBytes }) }, { weight: 4, arbitrary: mutatedBytes(seeds) });
}

/**
 * fuzzBytes for seeds known only when a run starts (ids that a server handed out): which
 * seed and its damage, or random bytes; `bytesFrom` makes the bytes.
 */
export type BytesRecipe = { random: Uint8Array } | { seed: number; mutations: ByteMutation[] };

export function bytesRecipe(maxRandomBytes = 256, maxMutations = 4): Arbitrary<BytesRecipe> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.record({ random: fc.uint8Array({ maxLength: maxRandomBytes }) }) },
    { weight: 4, arbitrary: fc.record({ seed: fc.nat(), mutations: fc.array(byteMutation, { minLength: 1, maxLength: maxMutations }) }) },
  );
}

export function bytesFrom(recipe: BytesRecipe, seeds: readonly Uint8Array[]): Uint8Array {
  if ("random" in recipe) return recipe.random;
  return recipe.mutations.reduce(mutate, seeds[recipe.seed % seeds.length] ?? new Uint8Array(0));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

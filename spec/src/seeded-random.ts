/**
 * The seeded randomness of the sample orders (the coordinator's sample-order.ts) and of
 * dataset conversion's split. Every function here is
 * part of what makes a run repeatable: the same (seed, epoch) must give the same samples
 * in the same steps on any machine, in any release. Change none of them; a new order
 * algorithm gets a Shuffle value of its own.
 */

/**
 * mulberry32: a 32-bit PRNG with one uint32 of state. Each call adds 0x6d2b79f5 to the
 * state and returns a mix of it in [0, 1), a multiple of 2^-32.
 */
export function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Shuffles `order` in place: for i from length-1 down to 1, j = floor(random() * (i + 1)),
 * swap order[i] and order[j] (Durstenfeld's Fisher-Yates).
 */
export function fisherYates(order: Uint32Array, random: () => number): Uint32Array {
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** murmur3's 32-bit finaliser: a bijection of uint32 in which every input bit reaches every output bit. */
export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A uint32 seed from uint32 words (a stream's tag first, then seed, epoch, ...):
 * h = 0x6a09e667; for each word w: h = fmix32((h * 0x9e3779b1 mod 2^32) XOR w).
 * The tag keeps the streams of different orders (and of their parts) apart.
 */
export function seedFrom(words: readonly number[]): number {
  let h = 0x6a09e667;
  for (const word of words) h = fmix32(Math.imul(h, 0x9e3779b1) ^ (word >>> 0));
  return h;
}

/** The tags of the seed streams (seedFrom's first word). */
export const streams = {
  blockWindows: 0xb10c0001,
  blockRecords: 0xb10c0002,
  feistelRounds: 0xfe150001,
} as const;

/**
 * SHUFFLE_FEISTEL's order: a keyed bijection of [0, size) computed one position at a time,
 * so an epoch of any size (up to 2^32 - 1 records) costs a few numbers of memory, not an
 * array of the whole training set. Each position's index takes a handful of integer mixes.
 *
 * The algorithm, exactly (part of what makes a run repeatable; do not change it):
 * - bits = the smallest even number >= 2 with 2^bits >= size; half = bits / 2; the domain
 *   is [0, 2^bits), at most 4 x size, and a value x is split into its high half
 *   L = floor(x / 2^half) and low half R = x mod 2^half.
 * - Six round keys: key[r] = seedFrom([streams.feistelRounds, seed, epoch, r]) (spec/src/seeded-random.ts).
 * - One encryption, a balanced Feistel network of six rounds: for r = 0..5,
 *   (L, R) = (R, L XOR (fmix32(R XOR key[r]) mod 2^half)); the result is L * 2^half + R.
 *   Each round is a bijection of the domain, so the network is one.
 * - Cycle walking: position p maps to x = encrypt(p), then x = encrypt(x) again while
 *   x >= size. Restricted to [0, size) that is a bijection too (each cycle of the domain's
 *   permutation is walked past the values outside [0, size)), in under 4 encryptions per
 *   position on average.
 */

import { fmix32, seedFrom, streams } from "@trainfleet/spec";
import type { EpochOrder } from "./epoch-order.js";

const rounds = 6;
/** The most records a training set may have: indices travel as uint32. */
export const maxFeistelSize = 2 ** 32 - 1;

export class FeistelPermutation implements EpochOrder {
  readonly length: number;
  readonly #half: number;
  readonly #halfSize: number;
  readonly #keys: Uint32Array;

  constructor(seed: number, epoch: number, size: number) {
    if (!Number.isSafeInteger(size) || size < 0 || size > maxFeistelSize) {
      throw new RangeError(`a Feistel permutation covers 0 to ${maxFeistelSize} records, not ${size}`);
    }
    this.length = size;
    let bits = 2;
    while (2 ** bits < size) bits += 2;
    this.#half = bits / 2;
    this.#halfSize = 2 ** this.#half;
    this.#keys = Uint32Array.from({ length: rounds }, (_, round) => seedFrom([streams.feistelRounds, seed, epoch, round]));
  }

  /** The training-set index at `position` (0 <= position < length). */
  at(position: number): number {
    let x = this.#encrypt(position);
    while (x >= this.length) x = this.#encrypt(x);
    return x;
  }

  /** The indices at positions [begin, end), clamped to [0, length) as TypedArray.slice does. */
  slice(begin: number, end: number = this.length): Uint32Array {
    const from = Math.max(0, Math.min(begin, this.length));
    const to = Math.max(from, Math.min(end, this.length));
    const indices = new Uint32Array(to - from);
    for (let i = 0; i < indices.length; i++) indices[i] = this.at(from + i);
    return indices;
  }

  #encrypt(x: number): number {
    const mask = this.#halfSize - 1;
    let left = Math.floor(x / this.#halfSize);
    let right = x % this.#halfSize;
    for (let round = 0; round < rounds; round++) {
      const mixed = (left ^ (fmix32(right ^ this.#keys[round]!) & mask)) >>> 0;
      left = right;
      right = mixed;
    }
    return left * this.#halfSize + right;
  }
}

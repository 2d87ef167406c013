/**
 * Seeded, reproducible record orders for conversion: which records go to the evaluation set
 * (an exact count, chosen uniformly) and an optional shuffle of the rest. The same seed gives
 * the same split on every machine (mulberry32, integer arithmetic only).
 */

/** Records 0..records-1 split into training and evaluation, each in ascending order. */
export function splitRecords(records: number, evalFraction: number, seed: number): { train: Uint32Array; evaluation: Uint32Array } {
  const evalCount = Math.round(records * evalFraction);
  const order = shuffled(records, seed);
  const evaluation = order.slice(0, evalCount).sort();
  const train = order.slice(evalCount).sort();
  return { train, evaluation };
}

/** A seeded permutation of 0..records-1 (Fisher-Yates). */
export function shuffled(records: number, seed: number): Uint32Array {
  const order = Uint32Array.from({ length: records }, (_, i) => i);
  const random = mulberry32(seed);
  for (let i = records - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = order[i]!;
    order[i] = order[j]!;
    order[j] = swap;
  }
  return order;
}

/** `order` applied to `records`: records[order[i]]. */
export function reorder(records: Uint32Array, order: Uint32Array): Uint32Array {
  return Uint32Array.from(order, (i) => records[i]!);
}

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

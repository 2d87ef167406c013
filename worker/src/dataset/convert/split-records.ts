/**
 * Seeded, reproducible record orders for conversion: which records go to the evaluation set
 * (an exact count, chosen uniformly) and an optional shuffle of the rest. The same seed gives
 * the same split on every machine (spec's mulberry32 and Fisher-Yates, as the sample ledger's).
 */
import { fisherYates, mulberry32 } from "@trainfleet/spec";

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
  return fisherYates(
    Uint32Array.from({ length: records }, (_, i) => i),
    mulberry32(seed >>> 0),
  );
}

/** `order` applied to `records`: records[order[i]]. */
export function reorder(records: Uint32Array, order: Uint32Array): Uint32Array {
  return Uint32Array.from(order, (i) => records[i]!);
}

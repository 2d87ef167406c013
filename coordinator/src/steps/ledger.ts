/**
 * The sample ledger: which training samples each step consumes. Every epoch is a seeded
 * permutation of the training set (an EpochOrder of the job's training.shuffle, see
 * sample-order.ts); each step takes the next global batch of it from the
 * ledger position and splits it evenly (contiguously) over the ranks there are. The global
 * batch is fixed for the job, so where a step's samples lie does not depend on how many
 * ranks share them: a step abandoned by a membership change is re-run on the same samples,
 * split over the new ranks. The last batch of an epoch is short rather than dropped, so
 * every sample of an epoch is used exactly once.
 */

import { fisherYates, mulberry32 } from "@trainfleet/spec";
import type { EpochOrder } from "./epoch-order.js";

export interface LedgerPosition {
  epoch: number;
  /** Samples of this epoch's permutation already consumed. */
  offset: number;
}

export interface PlannedStep {
  epoch: number;
  globalBatchSize: number;
  /** sampleIndices[rank]: that rank's training-set indices. */
  sampleIndices: Uint32Array[];
  next: LedgerPosition;
}

/**
 * SHUFFLE_GLOBAL's order of epoch `epoch` (sample-order.ts): 0..size-1 shuffled by
 * Fisher-Yates driven by mulberry32 seeded with (seed XOR (epoch + 1) * 0x9e3779b1) mod 2^32.
 * The ledger's first order: every job before training.shuffle existed ran on it.
 */
export function epochPermutation(seed: number, epoch: number, size: number): Uint32Array {
  const order = new Uint32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  return fisherYates(order, mulberry32((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0));
}

export function stepsPerEpoch(datasetSize: number, globalBatchSize: number): number {
  return Math.ceil(datasetSize / globalBatchSize);
}

/** Where step `step` begins: steps of an epoch are consecutive global batches of its permutation. */
export function positionOfStep(step: number, datasetSize: number, globalBatchSize: number): LedgerPosition {
  const perEpoch = stepsPerEpoch(datasetSize, globalBatchSize);
  return { epoch: Math.floor(step / perEpoch), offset: (step % perEpoch) * globalBatchSize };
}

/** The step at `position` of the epoch's `order`, split contiguously over `worldSize` ranks in rank order. */
export function planStep(position: LedgerPosition, order: EpochOrder, worldSize: number, globalBatchSize: number): PlannedStep {
  const begin = position.offset;
  const end = Math.min(order.length, begin + globalBatchSize);
  const size = end - begin;
  const sampleIndices: Uint32Array[] = [];
  for (let rank = 0; rank < worldSize; rank++) {
    sampleIndices.push(order.slice(begin + Math.floor((size * rank) / worldSize), begin + Math.floor((size * (rank + 1)) / worldSize)));
  }
  const next = end === order.length ? { epoch: position.epoch + 1, offset: 0 } : { epoch: position.epoch, offset: end };
  return { epoch: position.epoch, globalBatchSize: size, sampleIndices, next };
}

/**
 * What the trainer reads samples through, whatever holds them: the built-in Fashion-MNIST in
 * memory or a sharded dataset read lazily. Indices are global record numbers, as the
 * coordinator's sample ledger hands them out.
 */
import { invalidField } from "@trainfleet/proto";
import type { HostBatch } from "../compute/host-batch.js";

export interface RecordSet {
  readonly count: number;
  /** The samples at `indices`, in that order. */
  batch(indices: ArrayLike<number>, signal?: AbortSignal): Promise<HostBatch>;
  /** Starts reading what a later batch will ask for, without waiting; errors surface in that batch. */
  prefetch(indices: ArrayLike<number>): void;
  /** Bytes fetched from storage so far (blocks and footers; 0 for data loaded whole at start). */
  readonly bytesRead: number;
}

export interface TrainingData {
  train: RecordSet;
  eval: RecordSet;
  close(): Promise<void>;
}

/** The position of the first index that is not a record of the set, or -1. */
export function invalidIndexAt(indices: ArrayLike<number>, count: number): number {
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i] as number;
    if (!Number.isInteger(index) || index < 0 || index >= count) return i;
  }
  return -1;
}

/** Refuses an index that is not a record of the set, as makeBatch does. */
export function checkIndices(indices: ArrayLike<number>, count: number): void {
  const at = invalidIndexAt(indices, count);
  if (at >= 0) throw invalidField("sample_indices", `index ${indices[at]} (position ${at}) is outside the split's ${count} samples`);
}

/**
 * The sample ledger: which training samples each step consumes. Every epoch is a seeded
 * permutation of the training set; each step takes the next global batch of it from the
 * ledger position and splits it evenly (contiguously) over the ranks there are. The global
 * batch is fixed for the job, so where a step's samples lie does not depend on how many
 * ranks share them: a step abandoned by a membership change is re-run on the same samples,
 * split over the new ranks. The last batch of an epoch is short rather than dropped, so
 * every sample of an epoch is used exactly once.
 */

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

/** Fisher-Yates over 0..size-1 driven by a PRNG seeded from (seed, epoch). */
export function epochPermutation(seed: number, epoch: number, size: number): Uint32Array {
  const order = new Uint32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  const random = mulberry32((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

export function stepsPerEpoch(datasetSize: number, globalBatchSize: number): number {
  return Math.ceil(datasetSize / globalBatchSize);
}

/** Where step `step` begins: steps of an epoch are consecutive global batches of its permutation. */
export function positionOfStep(step: number, datasetSize: number, globalBatchSize: number): LedgerPosition {
  const perEpoch = stepsPerEpoch(datasetSize, globalBatchSize);
  return { epoch: Math.floor(step / perEpoch), offset: (step % perEpoch) * globalBatchSize };
}

export function planStep(position: LedgerPosition, permutation: Uint32Array, worldSize: number, globalBatchSize: number): PlannedStep {
  const begin = position.offset;
  const end = Math.min(permutation.length, begin + globalBatchSize);
  const size = end - begin;
  const sampleIndices: Uint32Array[] = [];
  for (let rank = 0; rank < worldSize; rank++) {
    sampleIndices.push(
      permutation.slice(begin + Math.floor((size * rank) / worldSize), begin + Math.floor((size * (rank + 1)) / worldSize)),
    );
  }
  const next = end === permutation.length ? { epoch: position.epoch + 1, offset: 0 } : { epoch: position.epoch, offset: end };
  return { epoch: position.epoch, globalBatchSize: size, sampleIndices, next };
}

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

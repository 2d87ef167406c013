/**
 * An epoch's samples in order, as the ledger (ledger.ts) takes its steps from them: a
 * length and the indices at a range of positions. An order may hold the whole permutation
 * (a Uint32Array is one) or compute each position when asked (feistel-permutation.ts), so
 * the ledger never needs the whole of it in memory.
 */
export interface EpochOrder {
  readonly length: number;
  /** The training-set indices at positions [begin, end) of the epoch. */
  slice(begin: number, end: number): Uint32Array;
}

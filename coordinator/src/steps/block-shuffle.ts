/**
 * SHUFFLE_BLOCK's order: an epoch in which, at workers.replicas ranks, each rank's part of
 * every step comes from windows of consecutive records that only it reads this epoch. A
 * window is a sharded dataset's block (training.shuffle_window records, or the dataset's
 * block size), so each of N workers reads about 1/N of the blocks per epoch instead of all
 * of them, and reads each of its blocks once, a few steps in a row.
 *
 * The algorithm, exactly (part of what makes a run repeatable; do not change it), for
 * `size` records, window W, L lanes (workers.replicas) and global batch B:
 * 1. Windows: window k holds the indices [k*W, min(size, (k+1)*W)); there are
 *    ceil(size / W) of them, the last one short when W does not divide size.
 * 2. The windows' order: 0..windows-1 shuffled by Fisher-Yates (spec/src/seeded-random.ts) driven by
 *    mulberry32(seedFrom([streams.blockWindows, seed, epoch])).
 * 3. Dealing: the j-th window of that order goes to lane j mod L; a lane's windows keep
 *    their order. Lanes then differ by at most one window (and by the short last window).
 * 4. Inside window k, its records k*W + 0..len-1 are shuffled by Fisher-Yates driven by
 *    mulberry32(seedFrom([streams.blockRecords, seed, epoch, k])). A lane's sequence is its
 *    windows' shuffled records, window after window.
 * 5. Interleaving, round after round until every lane is empty: lane l gives its next
 *    share(l) = floor(B*(l+1)/L) - floor(B*l/L) records (B/L each when L divides B), lanes
 *    in order 0..L-1. A full round is B records, one step, whose rank-l slice at world
 *    size L (ledger.ts splits a step with the same floors) is exactly lane l's share.
 *
 * The tail: a lane that runs out gives fewer records, then none: a round is shorter than a
 * step from then on, so the epoch's last steps (about W / (B/L) of them at most) take their
 * slices from other lanes' last windows too. Every index still comes exactly once, the
 * last step is short as in every order, and the ledger does not change.
 * At another world size (an elastic job with more or fewer workers for a while) the steps
 * are the same and split contiguously over the ranks there are: exactly once as always,
 * only with less locality (a rank's slice spans neighbouring lanes' windows).
 */

import { fisherYates, mulberry32, seedFrom, streams } from "@trainfleet/spec";
import type { EpochOrder } from "./epoch-order.js";

export interface BlockShuffleOptions {
  /** Records per window, >= 1. */
  window: number;
  /** Lanes: the ranks that read disjoint windows (workers.replicas), >= 1. */
  lanes: number;
  /** Records per step (workers.replicas x batch_size_per_worker), >= lanes. */
  globalBatchSize: number;
}

/** The epoch's order of `size` records as the algorithm above gives it (an array of `size` indices). */
export function blockShuffleOrder(seed: number, epoch: number, size: number, options: BlockShuffleOptions): EpochOrder {
  const { window, lanes, globalBatchSize } = options;
  // A job's global batch is workers.replicas x batch_size_per_worker: never fewer records than lanes, so every lane's share is 1 or more.
  if (!(window >= 1 && lanes >= 1 && globalBatchSize >= lanes)) {
    throw new RangeError(
      `block shuffle needs a window of 1 or more records, 1 or more lanes and a global batch of at least the lanes, not ${window}, ${lanes}, ${globalBatchSize}`,
    );
  }
  const windowCount = Math.ceil(size / window);
  const windowOrder = new Uint32Array(windowCount);
  for (let k = 0; k < windowCount; k++) windowOrder[k] = k;
  fisherYates(windowOrder, mulberry32(seedFrom([streams.blockWindows, seed, epoch])));

  const shares = Array.from(
    { length: lanes },
    (_, lane) => Math.floor((globalBatchSize * (lane + 1)) / lanes) - Math.floor((globalBatchSize * lane) / lanes),
  );
  const lane = Array.from({ length: lanes }, (_, index) => new LaneReader(seed, epoch, size, window, windowOrder, index, lanes));
  const order = new Uint32Array(size);
  let filled = 0;
  while (filled < size) {
    for (let l = 0; l < lanes; l++) filled = lane[l]!.take(shares[l]!, order, filled);
  }
  return order;
}

/** One lane's records in order: its windows (every lanes-th of the shuffled windows, from the lane's own), each shuffled when reached. */
class LaneReader {
  /** Index into windowOrder of the lane's current window. */
  #next: number;
  #records = new Uint32Array(0);
  #offset = 0;

  constructor(
    private readonly seed: number,
    private readonly epoch: number,
    private readonly size: number,
    private readonly window: number,
    private readonly windowOrder: Uint32Array,
    lane: number,
    private readonly lanes: number,
  ) {
    this.#next = lane;
  }

  /** Writes up to `count` of the lane's next records into `order` at `at`; returns the new end. */
  take(count: number, order: Uint32Array, at: number): number {
    let end = at;
    for (let taken = 0; taken < count; taken++) {
      if (this.#offset === this.#records.length && !this.#open()) break;
      order[end++] = this.#records[this.#offset++]!;
    }
    return end;
  }

  /** Moves to the lane's next window, shuffled; false when the lane has none left. */
  #open(): boolean {
    if (this.#next >= this.windowOrder.length) return false;
    const k = this.windowOrder[this.#next]!;
    this.#next += this.lanes;
    const begin = k * this.window;
    const records = new Uint32Array(Math.min(this.size, begin + this.window) - begin);
    for (let i = 0; i < records.length; i++) records[i] = begin + i;
    fisherYates(records, mulberry32(seedFrom([streams.blockRecords, this.seed, this.epoch, k])));
    this.#records = records;
    this.#offset = 0;
    return true;
  }
}

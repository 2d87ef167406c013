/**
 * The order of each epoch's samples, as the job's training.shuffle chooses it. Every order
 * is a permutation of the global index [0, size), the same for the same (seed, epoch), so
 * the ledger (ledger.ts) keeps exactly-once across resizes whichever is chosen:
 * - global (SHUFFLE_GLOBAL, the default): Fisher-Yates over the whole training set
 *   (ledger.ts's epochPermutation, bit-identical to the ledger's order before there was a
 *   choice);
 * - block (SHUFFLE_BLOCK): windows of a sharded dataset's blocks dealt to one lane per
 *   worker, so each worker reads about 1/N of the data per epoch (block-shuffle.ts);
 * - feistel (SHUFFLE_FEISTEL): a keyed bijection computed per position in O(1) memory, for
 *   training sets too large for an in-memory permutation (feistel-permutation.ts).
 * Each algorithm is written down exactly beside its code. A Shuffle value names one
 * algorithm for good: a changed algorithm is a new value, so a spec replays the same run.
 */
import type { JobSpec } from "@trainfleet/proto";
import { invalidField, Shuffle } from "@trainfleet/proto";
import { blockShuffleOrder } from "./block-shuffle.js";
import type { EpochOrder } from "./epoch-order.js";
import { FeistelPermutation } from "./feistel-permutation.js";
import { epochPermutation } from "./ledger.js";

export type SampleOrder =
  | { kind: "global" }
  /** `window` records per window (>= 1), dealt to `lanes` lanes (workers.replicas). */
  | { kind: "block"; window: number; lanes: number }
  | { kind: "feistel" };

export const globalOrder: SampleOrder = { kind: "global" };

/**
 * The order a spec chooses. Block shuffle's window is training.shuffleWindow, or the
 * dataset's block size (dataset.facts.recordsPerBlock) when that is 0. An unresolved spec
 * without training.shuffle (one written before it existed) is global.
 */
export function sampleOrderOf(spec: JobSpec): SampleOrder {
  const training = spec.training;
  switch (training?.shuffle ?? Shuffle.UNSPECIFIED) {
    case Shuffle.UNSPECIFIED:
    case Shuffle.GLOBAL:
      return globalOrder;
    case Shuffle.FEISTEL:
      return { kind: "feistel" };
    case Shuffle.BLOCK: {
      const window = training!.shuffleWindow || (spec.dataset?.facts?.recordsPerBlock ?? 0);
      if (window < 1) {
        throw invalidField(
          "spec.training.shuffleWindow",
          "block shuffle needs a window: give training.shuffleWindow (records), or a sharded dataset whose facts give its block size",
        );
      }
      return { kind: "block", window, lanes: Math.max(1, spec.workers?.replicas ?? 1) };
    }
    default:
      throw invalidField(
        "spec.training.shuffle",
        `${training!.shuffle} is not a Shuffle: SHUFFLE_GLOBAL, SHUFFLE_BLOCK or SHUFFLE_FEISTEL`,
      );
  }
}

/** Epoch `epoch`'s order of `size` samples; `globalBatchSize` is the job's (block shuffle lines its lanes up with the steps). */
export function epochOrder(order: SampleOrder, seed: number, epoch: number, size: number, globalBatchSize: number): EpochOrder {
  switch (order.kind) {
    case "global":
      return epochPermutation(seed, epoch, size);
    case "block":
      return blockShuffleOrder(seed, epoch, size, { window: order.window, lanes: order.lanes, globalBatchSize });
    case "feistel":
      return new FeistelPermutation(seed, epoch, size);
  }
}

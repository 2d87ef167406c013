/**
 * The built-in Fashion-MNIST split as a RecordSet: loaded whole at start, batches built by
 * makeBatch exactly as before, so the default job keeps its bits.
 */
import { makeBatch } from "../compute/host-batch.js";
import type { ImageSplit } from "./fashion-mnist.js";
import type { RecordSet } from "./record-set.js";

export function inMemoryRecords(split: ImageSplit): RecordSet {
  return {
    count: split.count,
    bytesRead: 0,
    async batch(indices) {
      return makeBatch(split, indices);
    },
    prefetch() {},
  };
}

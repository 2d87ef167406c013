/**
 * Global record index -> (file, block, row) by prefix sums over the manifest's blocks, so the
 * coordinator's ledger stays a permutation of 0..N-1 whatever the shards are.
 */
import type { DatasetFile } from "@trainfleet/artifacts";

export interface BlockAddress {
  file: number;
  /** The block's index inside its file. */
  block: number;
  /** The global index of its first record. */
  start: number;
  records: number;
}

export interface RecordLocator {
  readonly count: number;
  /** Every block of every file, in order; a block's position here is its global block number. */
  readonly blocks: readonly BlockAddress[];
  /** The global block number holding record `index` (0 <= index < count). */
  blockOf(index: number): number;
}

export function createRecordLocator(files: readonly DatasetFile[]): RecordLocator {
  const blocks: BlockAddress[] = [];
  let start = 0;
  files.forEach((file, f) => {
    file.blocks.forEach((block, b) => {
      blocks.push({ file: f, block: b, start, records: block.records });
      start += block.records;
    });
  });
  const starts = Float64Array.from(blocks, (block) => block.start);
  return {
    count: start,
    blocks,
    blockOf(index) {
      // The last block whose start is <= index.
      let low = 0;
      let high = starts.length - 1;
      while (low < high) {
        const middle = (low + high + 1) >>> 1;
        if ((starts[middle] as number) <= index) low = middle;
        else high = middle - 1;
      }
      return low;
    },
  };
}

/**
 * What a shard writer returns: the file's bytes and where its blocks and footer lie, read
 * back from the written file's own metadata so the manifest describes exactly those bytes.
 */
import type { DatasetColumn } from "@trainfleet/artifacts";
import type { RecordTable } from "./record-table.js";

export interface WrittenShard {
  bytes: Uint8Array;
  blocks: { records: number; offset: number; length: number }[];
  footer: { offset: number; length: number };
}

/** Writes `table` (its columns in `schema` order and types) as one file of blocks of `recordsPerBlock` records. */
export type ShardWriter = (table: RecordTable, schema: DatasetColumn[], recordsPerBlock: number) => WrittenShard;

/** The footer is everything after the last block. */
export function footerAfter(blocks: WrittenShard["blocks"], size: number): WrittenShard["footer"] {
  const last = blocks[blocks.length - 1]!;
  const offset = last.offset + last.length;
  return { offset, length: size - offset };
}

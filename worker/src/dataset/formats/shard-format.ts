/**
 * What the shard reader needs from a file format (Parquet, Arrow IPC): check a file's footer
 * against its manifest entry, then decode one block from its own bytes. Decoded columns are
 * records x width: uint8 columns as bytes (images stay 1 byte a value in the cache), every
 * other type as float64 (which holds them exactly, int64 up to 2^53).
 */
import type { DatasetColumn, DatasetFile, DatasetManifest } from "@trainfleet/artifacts";
import { Code, TrainfleetError } from "@trainfleet/proto";

export type ColumnArray = Uint8Array | Float64Array;

/** The values of the columns a sample needs, by column name. */
export type BlockColumns = Map<string, ColumnArray>;

/** An empty column of `records` records, in the array its type decodes to. */
export function newColumnArray(column: DatasetColumn, records: number): ColumnArray {
  const length = records * (column.length ?? 1);
  return column.type === "uint8" ? new Uint8Array(length) : new Float64Array(length);
}

export interface ShardLayout {
  /** Decodes block `index` from exactly its bytes (already verified against the manifest). */
  decodeBlock(index: number, bytes: Uint8Array): Promise<BlockColumns>;
}

export interface ShardFormat {
  /** Parses the footer bytes and checks them against the file's manifest entry; `name` is the file in errors. */
  openFooter(footer: Uint8Array, file: DatasetFile, manifest: DatasetManifest, name: string): ShardLayout;
}

/** The columns a sample is made of: the features', then the label's. */
export function sampleColumns(manifest: DatasetManifest): string[] {
  const label = manifest.label.kind === "classes" ? [manifest.label.column] : manifest.label.columns;
  return [...manifest.features.columns, ...label];
}

/** A file that does not hold what its manifest says. */
export function shardDataLoss(name: string, problem: string, cause?: unknown): TrainfleetError {
  return new TrainfleetError(
    Code.DATA_LOSS,
    `${name}: ${problem}. The file or its manifest changed after \`trainfleet dataset convert\` wrote them: restore the file, or convert the data again`,
    cause === undefined ? {} : { cause },
  );
}

/** Row starts of each block inside its file. */
export function blockStarts(file: DatasetFile): number[] {
  const starts: number[] = [];
  let start = 0;
  for (const block of file.blocks) {
    starts.push(start);
    start += block.records;
  }
  return starts;
}

/**
 * Parquet shards through hyparquet: the footer's metadata is checked against the manifest
 * (row groups = blocks, their rows and byte ranges, the schema), and a block is decoded by
 * reading its row group from a buffer that holds only that row group's bytes, so nothing
 * outside the verified range can be read.
 */
import type { DatasetColumn, DatasetFile, DatasetManifest } from "@trainfleet/artifacts";
import { TrainfleetError } from "@trainfleet/proto";
import type { AsyncBuffer, ColumnData, FileMetaData } from "hyparquet";
import { parquetMetadata, parquetRead } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { parquetSchemaProblem, rowGroupRange } from "./parquet-layout.js";
import type { BlockColumns, ColumnArray, ShardFormat, ShardLayout } from "./shard-format.js";
import { blockStarts, newColumnArray, sampleColumns, shardDataLoss } from "./shard-format.js";
import { decodeVector, valueBytes } from "./vector-bytes.js";

export const parquetShardFormat: ShardFormat = {
  openFooter(footer, file, manifest, name) {
    let metadata: FileMetaData;
    try {
      const copy = footer.slice();
      metadata = parquetMetadata(copy.buffer);
    } catch (error) {
      throw shardDataLoss(name, `its footer is not Parquet metadata (${(error as Error).message})`, error);
    }
    checkRowGroups(metadata, file, name);
    const problem = parquetSchemaProblem(metadata, manifest.schema);
    if (problem !== undefined) throw shardDataLoss(name, `the file ${problem}`);
    return parquetLayout(metadata, file, manifest, name);
  },
};

function checkRowGroups(metadata: FileMetaData, file: DatasetFile, name: string): void {
  if (metadata.row_groups.length !== file.blocks.length) {
    throw shardDataLoss(name, `the file has ${metadata.row_groups.length} row groups, but the manifest lists ${file.blocks.length} blocks`);
  }
  metadata.row_groups.forEach((group, i) => {
    const block = file.blocks[i]!;
    const rows = Number(group.num_rows);
    if (rows !== block.records) throw shardDataLoss(name, `row group ${i} holds ${rows} records, but the manifest says ${block.records}`);
    const { offset, end } = rowGroupRange(group);
    if (offset !== block.offset || end !== block.offset + block.length) {
      throw shardDataLoss(
        name,
        `row group ${i} spans bytes ${offset}..${end}, but the manifest says ${block.offset}..${block.offset + block.length}`,
      );
    }
  });
}

function parquetLayout(metadata: FileMetaData, file: DatasetFile, manifest: DatasetManifest, name: string): ShardLayout {
  const starts = blockStarts(file);
  const columns = new Map(manifest.schema.map((column) => [column.name, column]));
  const wanted = sampleColumns(manifest);
  return {
    async decodeBlock(index, bytes) {
      const block = file.blocks[index]!;
      const out: BlockColumns = new Map(wanted.map((column) => [column, newColumnArray(columns.get(column)!, block.records)]));
      const filled = new Map(wanted.map((column) => [column, 0]));
      // hyparquet calls onChunk in a promise callback that nothing awaits: what it throws
      // would be an unhandled rejection (a crashed worker). The first problem is kept and
      // thrown once the read is over, when every chunk has been handed over.
      let problem: unknown;
      const onChunk = (chunk: ColumnData) => {
        if (problem !== undefined) return;
        try {
          const column = columns.get(chunk.columnName)!;
          fill(out.get(chunk.columnName)!, column, chunk.columnData, chunk.rowStart - starts[index]!, name, index);
          filled.set(chunk.columnName, filled.get(chunk.columnName)! + chunk.columnData.length);
        } catch (error) {
          problem = error;
        }
      };
      try {
        await parquetRead({
          file: blockBuffer(bytes, block.offset, file.bytes),
          metadata,
          columns: wanted,
          rowStart: starts[index]!,
          rowEnd: starts[index]! + block.records,
          compressors,
          utf8: false,
          onChunk,
        });
        if (problem !== undefined) throw problem;
      } catch (error) {
        if (error instanceof TrainfleetError) throw error;
        throw shardDataLoss(name, `row group ${index} cannot be decoded (${(error as Error).message})`, error);
      }
      for (const [column, rows] of filled) {
        if (rows !== block.records)
          throw shardDataLoss(name, `row group ${index} holds ${rows} values of column "${column}", not ${block.records}`);
      }
      return out;
    },
  };
}

/** The file as hyparquet sees it, where only [offset, offset + bytes.length) can be read. */
function blockBuffer(bytes: Uint8Array, offset: number, size: number): AsyncBuffer {
  return {
    byteLength: size,
    slice(start, end = size) {
      if (start < offset || end > offset + bytes.length) {
        throw new Error(`read of bytes ${start}..${end} outside the block's ${offset}..${offset + bytes.length}`);
      }
      return bytes.slice(start - offset, end - offset).buffer;
    },
  };
}

/** Whether `value` is stored exactly (a uint8 column's INT32 values must be bytes). */
function fits(out: ColumnArray, value: number): boolean {
  return !(out instanceof Uint8Array) || (Number.isInteger(value) && value >= 0 && value <= 255);
}

/** Copies a decoded chunk into the block's column at row `row`. */
function fill(out: ColumnArray, column: DatasetColumn, data: ArrayLike<unknown>, row: number, name: string, block: number): void {
  const width = column.length ?? 1;
  for (let i = 0; i < data.length; i++) {
    const value = data[i];
    if (column.length !== undefined && value instanceof Uint8Array && value.length === width * valueBytes[column.type]) {
      if (out instanceof Uint8Array) out.set(value, (row + i) * width);
      else decodeVector(column.type, value, out, (row + i) * width, width);
    } else if (column.length === undefined && (typeof value === "number" || typeof value === "bigint") && fits(out, Number(value))) {
      out[row + i] = Number(value);
    } else {
      throw shardDataLoss(
        name,
        `row group ${block} has ${value === null || value === undefined ? "a missing value" : "a malformed value"} in column "${column.name}" at row ${row + i}`,
      );
    }
  }
}

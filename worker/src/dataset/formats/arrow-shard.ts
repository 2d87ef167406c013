/**
 * Arrow IPC file shards through apache-arrow: the footer (record batch locations and the
 * schema) is checked against the manifest, and a block is decoded from its own bytes alone,
 * as a one-batch stream behind the schema message, so no other part of the file is read.
 * Both are checked first for what apache-arrow does not check (arrow-bounds.ts): vectors
 * that claim more than their bytes hold, which it would loop over or allocate.
 */
import type { DatasetColumn, DatasetFile, DatasetManifest } from "@trainfleet/artifacts";
import type { Data, RecordBatch, Schema } from "apache-arrow";
import { tableFromIPC } from "apache-arrow";
import { Footer } from "apache-arrow/ipc/metadata/file";
import { arrowFooterProblem, arrowRecordBatchProblem } from "./arrow-bounds.js";
import { arrowSchemaProblem, END_OF_STREAM, schemaStreamPrefix } from "./arrow-layout.js";
import type { BlockColumns, ColumnArray, ShardFormat, ShardLayout } from "./shard-format.js";
import { newColumnArray, sampleColumns, shardDataLoss } from "./shard-format.js";

const MAGIC = "ARROW1";

export const arrowShardFormat: ShardFormat = {
  openFooter(footer, file, manifest, name) {
    const schema = checkFooter(footer, file, name);
    const problem = arrowSchemaProblem(schema, manifest.schema);
    if (problem !== undefined) throw shardDataLoss(name, `the file ${problem}`);
    return arrowLayout(schemaStreamPrefix(schema), file, manifest, name);
  },
};

/** The file's schema, once its footer's record batches are the manifest's blocks. */
function checkFooter(footer: Uint8Array, file: DatasetFile, name: string): Schema {
  const tail = footer.length - 4 - MAGIC.length;
  if (tail < 0 || new TextDecoder().decode(footer.subarray(tail + 4)) !== MAGIC)
    throw shardDataLoss(name, "the file does not end like an Arrow IPC file (ARROW1)");
  const length = new DataView(footer.buffer, footer.byteOffset, footer.byteLength).getInt32(tail, true);
  if (length <= 0 || length > tail)
    throw shardDataLoss(name, `the Arrow footer claims ${length} bytes, but the footer range holds ${tail}`);
  const flatbuffer = footer.subarray(tail - length, tail);
  const damage = arrowFooterProblem(flatbuffer);
  if (damage !== undefined) throw shardDataLoss(name, `its Arrow footer is damaged: ${damage}`);
  let decoded: InstanceType<typeof Footer>;
  try {
    decoded = Footer.decode(flatbuffer);
  } catch (error) {
    throw shardDataLoss(name, `its Arrow footer cannot be decoded (${(error as Error).message})`, error);
  }
  if (decoded.numDictionaries > 0)
    throw shardDataLoss(name, "the file has dictionary batches; trainfleet reads only numeric columns without dictionaries");
  const batches = [...decoded.recordBatches()];
  if (batches.length !== file.blocks.length) {
    throw shardDataLoss(name, `the file has ${batches.length} record batches, but the manifest lists ${file.blocks.length} blocks`);
  }
  batches.forEach((batch, i) => {
    const block = file.blocks[i]!;
    const end = Number(batch.offset) + batch.metaDataLength + Number(batch.bodyLength);
    if (Number(batch.offset) !== block.offset || end !== block.offset + block.length) {
      throw shardDataLoss(
        name,
        `record batch ${i} spans bytes ${Number(batch.offset)}..${end}, but the manifest says ${block.offset}..${block.offset + block.length}`,
      );
    }
  });
  return decoded.schema;
}

function arrowLayout(prefix: Uint8Array, file: DatasetFile, manifest: DatasetManifest, name: string): ShardLayout {
  const columns = new Map(manifest.schema.map((column) => [column.name, column]));
  const wanted = sampleColumns(manifest);
  return {
    async decodeBlock(index, bytes) {
      const block = file.blocks[index]!;
      const damage = arrowRecordBatchProblem(bytes, block.records);
      if (damage !== undefined) throw shardDataLoss(name, `record batch ${index} is damaged: ${damage}`);
      const stream = new Uint8Array(prefix.length + bytes.length + END_OF_STREAM.length);
      stream.set(prefix);
      stream.set(bytes, prefix.length);
      stream.set(END_OF_STREAM, prefix.length + bytes.length);
      let batches: RecordBatch[];
      try {
        batches = tableFromIPC(stream).batches;
      } catch (error) {
        throw shardDataLoss(name, `record batch ${index} cannot be decoded (${(error as Error).message})`, error);
      }
      const rows = batches.reduce((total, batch) => total + batch.numRows, 0);
      if (batches.length !== 1 || rows !== block.records) {
        throw shardDataLoss(name, `record batch ${index} holds ${rows} records, but the manifest says ${block.records}`);
      }
      const batch = batches[0]!;
      const out: BlockColumns = new Map();
      for (const column of wanted) {
        const data = batch.getChild(column)!.data[0]!;
        out.set(column, values(data, columns.get(column)!, block.records, `${name}: record batch ${index}`));
      }
      return out;
    },
  };
}

/** A column's values as float64, records x width. */
function values(data: Data, column: DatasetColumn, records: number, where: string): ColumnArray {
  const width = column.length ?? 1;
  const leaf = column.length === undefined ? data : data.children[0];
  if (leaf === undefined || data.nullCount > 0 || leaf.nullCount > 0)
    throw shardDataLoss(where, `column "${column.name}" has missing values`);
  const start = column.length === undefined ? data.offset : leaf.offset + data.offset * width;
  const source = leaf.values as ArrayLike<number | bigint>;
  const out = newColumnArray(column, records);
  if (out instanceof Uint8Array && source instanceof Uint8Array) out.set(source.subarray(start, start + out.length));
  else for (let i = 0; i < out.length; i++) out[i] = Number(source[start + i]);
  return out;
}

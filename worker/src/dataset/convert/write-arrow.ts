/**
 * Writes a shard as an Arrow IPC file with apache-arrow: one record batch per block, no
 * nulls, no dictionaries, no compression, so a batch decodes from its own bytes. The same
 * table always gives the same bytes.
 */
import type { DatasetColumn } from "@trainfleet/artifacts";
import type { Data } from "apache-arrow";
import { makeData, RecordBatch, Schema, Struct, Table, tableToIPC } from "apache-arrow";
import { Footer } from "apache-arrow/ipc/metadata/file";
import { arrowField } from "../formats/arrow-layout.js";
import type { RecordTable, TableColumn } from "./record-table.js";
import { sliceRecords } from "./record-table.js";
import type { ShardWriter } from "./shard-writer.js";
import { footerAfter } from "./shard-writer.js";

export const writeArrowShard: ShardWriter = (table, schema, recordsPerBlock) => {
  const arrowSchema = new Schema(schema.map(arrowField));
  const batches: RecordBatch[] = [];
  for (let start = 0; start < table.records; start += recordsPerBlock) {
    batches.push(recordBatch(sliceRecords(table, start, Math.min(start + recordsPerBlock, table.records)), schema, arrowSchema));
  }
  const bytes = tableToIPC(new Table(arrowSchema, batches), "file");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const footerLength = view.getInt32(bytes.length - 10, true);
  const footer = Footer.decode(bytes.subarray(bytes.length - 10 - footerLength, bytes.length - 10));
  const blocks = [...footer.recordBatches()].map((block, i) => ({
    records: batches[i]!.numRows,
    offset: Number(block.offset),
    length: block.metaDataLength + Number(block.bodyLength),
  }));
  return { bytes, blocks, footer: footerAfter(blocks, bytes.length) };
};

function recordBatch(table: RecordTable, schema: DatasetColumn[], arrowSchema: Schema): RecordBatch {
  const children = table.columns.map((column, i) => columnData(column, schema[i]!, arrowSchema.fields[i]!.type, table.records));
  return new RecordBatch(arrowSchema, makeData({ type: new Struct(arrowSchema.fields), length: table.records, children }));
}

function columnData(column: TableColumn, schema: DatasetColumn, type: Struct["children"][number]["type"], records: number): Data {
  const values = typedValues(column, schema);
  if (schema.length === undefined) return makeData({ type, length: records, data: values } as Parameters<typeof makeData>[0]);
  const itemType = type.children[0]!.type;
  const child = makeData({ type: itemType, length: records * schema.length, data: values } as Parameters<typeof makeData>[0]);
  return makeData({ type, length: records, child } as Parameters<typeof makeData>[0]);
}

function typedValues(column: TableColumn, schema: DatasetColumn): ArrayLike<number | bigint> {
  const { values } = column;
  switch (schema.type) {
    case "uint8":
      return values instanceof Uint8Array ? values : Uint8Array.from(values);
    case "int32":
      return values instanceof Int32Array ? values : Int32Array.from(values);
    case "int64":
      return BigInt64Array.from(values, (v) => BigInt(v));
    case "float32":
      return values instanceof Float32Array ? values : Float32Array.from(values);
    case "float64":
      return values instanceof Float64Array ? values : Float64Array.from(values);
  }
}

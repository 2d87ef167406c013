/**
 * Writes a shard as Parquet with hyparquet-writer: one row group per block, no statistics
 * or page indexes (nothing but the data between row groups, so a block's range is exactly
 * its column chunks), Snappy pages. The same table always gives the same bytes.
 */
import type { DatasetColumn } from "@trainfleet/artifacts";
import { parquetMetadata } from "hyparquet";
import type { ColumnSource } from "hyparquet-writer";
import { parquetWriteBuffer } from "hyparquet-writer";
import { parquetSchemaElement, rowGroupRange } from "../formats/parquet-layout.js";
import { encodeVector } from "../formats/vector-bytes.js";
import type { TableColumn } from "./record-table.js";
import type { ShardWriter } from "./shard-writer.js";
import { footerAfter } from "./shard-writer.js";

export const writeParquetShard: ShardWriter = (table, schema, recordsPerBlock) => {
  const buffer = parquetWriteBuffer({
    columnData: table.columns.map((column, i) => columnSource(column, schema[i]!, table.records)),
    schema: [{ name: "root", num_children: schema.length }, ...schema.map(parquetSchemaElement)],
    rowGroupSize: recordsPerBlock,
    statistics: false,
    codec: "SNAPPY",
    createdBy: "trainfleet dataset convert",
  });
  const metadata = parquetMetadata(buffer);
  const blocks = metadata.row_groups.map((group) => {
    const { offset, end } = rowGroupRange(group);
    return { records: Number(group.num_rows), offset, length: end - offset };
  });
  return { bytes: new Uint8Array(buffer), blocks, footer: footerAfter(blocks, buffer.byteLength) };
};

function columnSource(column: TableColumn, schema: DatasetColumn, records: number): ColumnSource {
  const common = { name: column.name, nullable: false, statistics: false, columnIndex: false, offsetIndex: false };
  if (schema.length === undefined) {
    const data = schema.type === "int64" ? BigInt64Array.from(column.values, (v) => BigInt(v)) : column.values;
    return { ...common, data: schema.type === "uint8" ? Int32Array.from(column.values) : data };
  }
  const width = column.width;
  const data = Array.from({ length: records }, (_, r) => {
    const values = column.values.subarray(r * width, (r + 1) * width);
    return schema.type === "uint8" && values instanceof Uint8Array ? values : encodeVector(schema.type, values);
  });
  return { ...common, data };
}

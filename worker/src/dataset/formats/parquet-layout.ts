/**
 * How manifest columns are stored in Parquet, shared by the converter and the reader so they
 * cannot disagree: scalars as their physical type (uint8 as INT32 UINT_8), vectors as a
 * fixed-length byte array of little-endian values. A block is a row group; its byte range
 * runs from its first column chunk's first page to its last chunk's end.
 */
import type { DatasetColumn, DatasetValueType } from "@trainfleet/artifacts";
import type { FileMetaData, RowGroup, SchemaElement } from "hyparquet";
import { valueBytes } from "./vector-bytes.js";

const scalarTypes: Record<DatasetValueType, Pick<SchemaElement, "type" | "converted_type">> = {
  uint8: { type: "INT32", converted_type: "UINT_8" },
  int32: { type: "INT32" },
  int64: { type: "INT64" },
  float32: { type: "FLOAT" },
  float64: { type: "DOUBLE" },
};

export function parquetSchemaElement(column: DatasetColumn): SchemaElement {
  if (column.length === undefined) return { name: column.name, repetition_type: "REQUIRED", ...scalarTypes[column.type] };
  return {
    name: column.name,
    repetition_type: "REQUIRED",
    type: "FIXED_LEN_BYTE_ARRAY",
    type_length: column.length * valueBytes[column.type],
  };
}

/** [offset, end) of a row group's column chunks in the file. */
export function rowGroupRange(group: RowGroup): { offset: number; end: number } {
  let offset = Number.POSITIVE_INFINITY;
  let end = 0;
  for (const chunk of group.columns) {
    const meta = chunk.meta_data;
    if (meta === undefined) continue;
    const start = Number(meta.dictionary_page_offset || meta.data_page_offset);
    offset = Math.min(offset, start);
    end = Math.max(end, start + Number(meta.total_compressed_size));
  }
  return { offset: Number.isFinite(offset) ? offset : 0, end };
}

/** Why the file's schema cannot hold the manifest's columns, or undefined when it can. */
export function parquetSchemaProblem(metadata: FileMetaData, columns: DatasetColumn[]): string | undefined {
  const elements = new Map(metadata.schema.slice(1).map((element) => [element.name, element]));
  for (const column of columns) {
    const found = elements.get(column.name);
    if (found === undefined) return `has no column "${column.name}" (it has ${[...elements.keys()].join(", ")})`;
    const expected = parquetSchemaElement(column);
    if (found.num_children !== undefined || found.repetition_type === "REPEATED")
      return `column "${column.name}" is nested or repeated, not ${describeColumn(column)}`;
    const scalarMatches =
      found.type === expected.type && (found.type !== "INT32" || column.type !== "uint8" || found.converted_type === "UINT_8");
    if (!scalarMatches || found.type_length !== expected.type_length) {
      return `column "${column.name}" is ${found.type}${found.type_length === undefined ? "" : `(${found.type_length})`}, but the manifest says ${describeColumn(column)}`;
    }
  }
  return undefined;
}

function describeColumn(column: DatasetColumn): string {
  return column.length === undefined ? column.type : `${column.type}[${column.length}]`;
}

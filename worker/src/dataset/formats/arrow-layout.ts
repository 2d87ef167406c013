/**
 * How manifest columns are stored in Arrow IPC files, shared by the converter and the reader:
 * scalars as their Arrow type, vectors as a fixed-size list of it, nothing nullable. A block
 * is a record batch: its encapsulated message (metadata and body) as the footer lists it.
 */
import type { DatasetColumn, DatasetValueType } from "@trainfleet/artifacts";
import type { DataType, Schema } from "apache-arrow";
import { Field, FixedSizeList, Float32, Float64, Int32, Int64, RecordBatchStreamWriter, Table, Uint8 } from "apache-arrow";

function scalarType(type: DatasetValueType): DataType {
  switch (type) {
    case "uint8":
      return new Uint8();
    case "int32":
      return new Int32();
    case "int64":
      return new Int64();
    case "float32":
      return new Float32();
    case "float64":
      return new Float64();
  }
}

export function arrowType(column: DatasetColumn): DataType {
  const scalar = scalarType(column.type);
  return column.length === undefined ? scalar : new FixedSizeList(column.length, new Field("item", scalar, false));
}

export function arrowField(column: DatasetColumn): Field {
  return new Field(column.name, arrowType(column), false);
}

/** Why the file's schema cannot hold the manifest's columns, or undefined when it can. */
export function arrowSchemaProblem(schema: Schema, columns: DatasetColumn[]): string | undefined {
  for (const column of columns) {
    const field = schema.fields.find((f) => f.name === column.name);
    if (field === undefined) return `has no column "${column.name}" (it has ${schema.fields.map((f) => f.name).join(", ")})`;
    const expected = String(arrowType(column));
    if (String(field.type) !== expected) return `column "${column.name}" is ${String(field.type)}, but the manifest says ${expected}`;
  }
  return undefined;
}

/** The end-of-stream marker: a continuation token and a zero length. */
export const END_OF_STREAM = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0);

/**
 * The schema as the first message of an IPC stream. A record batch's bytes from a file are
 * the same encapsulated message a stream carries, so prefix + batch + end-of-stream is a
 * stream that stock apache-arrow decodes.
 */
export function schemaStreamPrefix(schema: Schema): Uint8Array {
  const stream = RecordBatchStreamWriter.writeAll(new Table(schema)).toUint8Array(true);
  const tail = stream.subarray(stream.length - END_OF_STREAM.length);
  if (!tail.every((b, i) => b === END_OF_STREAM[i])) throw new Error("apache-arrow wrote a schema stream without the end-of-stream marker");
  return stream.subarray(0, stream.length - END_OF_STREAM.length);
}

/**
 * Records in memory on their way from an input file to shard files: named columns of
 * records x width values. Reordering, slicing and choosing each column's stored type are
 * pure functions, so a conversion is the same bytes every time.
 */
import type { DatasetColumn, DatasetValueType } from "@trainfleet/artifacts";

export type ColumnValues = Uint8Array | Int32Array | Float32Array | Float64Array;

export interface TableColumn {
  name: string;
  /** Values per record: 1 for a scalar, more for a vector (an image's pixels). */
  width: number;
  values: ColumnValues;
}

export interface RecordTable {
  records: number;
  columns: TableColumn[];
}

/** The records at `order`, in that order. */
export function takeRecords(table: RecordTable, order: ArrayLike<number>): RecordTable {
  const columns = table.columns.map((column) => {
    const values = emptyLike(column.values, order.length * column.width);
    for (let i = 0; i < order.length; i++) {
      const from = (order[i] as number) * column.width;
      values.set(column.values.subarray(from, from + column.width), i * column.width);
    }
    return { ...column, values };
  });
  return { records: order.length, columns };
}

/** Records [start, end), sharing the table's memory. */
export function sliceRecords(table: RecordTable, start: number, end: number): RecordTable {
  return {
    records: end - start,
    columns: table.columns.map((column) => ({ ...column, values: column.values.subarray(start * column.width, end * column.width) })),
  };
}

/** The smallest type that holds every value of the column in all the given tables exactly. */
export function storedType(columns: TableColumn[]): DatasetValueType {
  if (columns.every((column) => column.values instanceof Uint8Array)) return "uint8";
  let min = 0;
  let max = 0;
  for (const { values } of columns) {
    for (let i = 0; i < values.length; i++) {
      const value = values[i] as number;
      if (!Number.isInteger(value)) return "float64";
      if (value < min) min = value;
      if (value > max) max = value;
    }
  }
  if (min >= 0 && max <= 255) return "uint8";
  return min >= -(2 ** 31) && max < 2 ** 31 ? "int32" : "float64";
}

/** The column as `type` stores it (values already known to fit, see storedType). */
export function castColumn(column: TableColumn, type: DatasetValueType): TableColumn {
  const Typed = { uint8: Uint8Array, int32: Int32Array, int64: Float64Array, float32: Float32Array, float64: Float64Array }[type];
  return column.values instanceof Typed ? column : { ...column, values: Typed.from(column.values) };
}

export function schemaColumn(column: TableColumn, type: DatasetValueType): DatasetColumn {
  return column.width === 1 ? { name: column.name, type } : { name: column.name, type, length: column.width };
}

function emptyLike(values: ColumnValues, length: number): ColumnValues {
  return new (values.constructor as new (length: number) => ColumnValues)(length);
}

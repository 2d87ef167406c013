/**
 * A fixed-size vector column stored as bytes (a Parquet fixed-length byte array): the
 * values little-endian, one after another. Written by the converter and read back by the
 * shard reader with the same table, so both sides agree on the layout.
 */
import type { DatasetValueType } from "@trainfleet/artifacts";

export const valueBytes: Record<DatasetValueType, number> = { uint8: 1, int32: 4, int64: 8, float32: 4, float64: 8 };

/** Decodes `count` values of `type` from `bytes` into out[at..]. */
export function decodeVector(type: DatasetValueType, bytes: Uint8Array, out: Float64Array, at: number, count: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) out[at + i] = readValue(type, view, i * valueBytes[type]);
}

/** Encodes `values` as `type`, little-endian. */
export function encodeVector(type: DatasetValueType, values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * valueBytes[type]);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) writeValue(type, view, i * valueBytes[type], values[i] as number);
  return out;
}

function readValue(type: DatasetValueType, view: DataView, at: number): number {
  switch (type) {
    case "uint8":
      return view.getUint8(at);
    case "int32":
      return view.getInt32(at, true);
    case "int64":
      return Number(view.getBigInt64(at, true));
    case "float32":
      return view.getFloat32(at, true);
    case "float64":
      return view.getFloat64(at, true);
  }
}

function writeValue(type: DatasetValueType, view: DataView, at: number, value: number): void {
  switch (type) {
    case "uint8":
      return view.setUint8(at, value);
    case "int32":
      return view.setInt32(at, value, true);
    case "int64":
      return view.setBigInt64(at, BigInt(value), true);
    case "float32":
      return view.setFloat32(at, value, true);
    case "float64":
      return view.setFloat64(at, value, true);
  }
}

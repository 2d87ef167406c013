/**
 * A decoded block turned into samples, as the manifest maps columns to features and labels:
 * features x = fround(value * scale + offset), feature columns one after another per record,
 * or what the job's module decoded them into (features.decoder "module", see record-decoder);
 * class labels checked to be in [0, classes); regression targets as float32. Done once per
 * block, so a batch is only copies. Scaled features that are all bytes (images) stay bytes, a
 * quarter of the memory, and are mapped through a 256-entry table as a batch copies them.
 */
import type { DatasetManifest } from "@trainfleet/artifacts";
import { columnWidth, featureWidth } from "@trainfleet/artifacts";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { BlockColumns } from "./formats/shard-format.js";

export interface SampleBlock {
  records: number;
  /** records x featureWidth: mapped floats, or raw bytes to map through byteFeatureTable. */
  features: Float32Array | Uint8Array;
  /** Classification: one class per record; regression: empty. */
  labels: Int32Array;
  /** Regression: records x label size. */
  targets: Float32Array | undefined;
}

export function sampleBlockBytes(block: SampleBlock): number {
  return block.features.byteLength + block.labels.byteLength + (block.targets?.byteLength ?? 0);
}

/** x for each byte value, when the features are scaled and every feature column holds bytes; undefined otherwise. */
export function byteFeatureTable(manifest: DatasetManifest): Float32Array | undefined {
  const features = manifest.features;
  if (features.decoder !== undefined) return undefined;
  const types = new Map(manifest.schema.map((column) => [column.name, column.type]));
  if (!features.columns.every((name) => types.get(name) === "uint8")) return undefined;
  const { scale, offset } = features;
  return Float32Array.from({ length: 256 }, (_, byte) => byte * scale + offset);
}

/**
 * `where` names the file and block in errors. `decoded`: the features the job's module decoded
 * from these columns, given exactly when the manifest has a decoder.
 */
export function toSamples(
  columns: BlockColumns,
  records: number,
  manifest: DatasetManifest,
  where: string,
  decoded?: Float32Array,
): SampleBlock {
  const widths = new Map(manifest.schema.map((column) => [column.name, columnWidth(column)]));
  const features = decoded ?? scaledFeatures(columns, records, manifest, widths);
  const label = manifest.label;
  if (label.kind === "regression") {
    const targets = new Float32Array(records * label.size);
    interleave(label.columns, columns, widths, records, targets, (value) => value);
    return { records, features, labels: new Int32Array(0), targets };
  }
  const values = columns.get(label.column)!;
  const labels = new Int32Array(records);
  for (let r = 0; r < records; r++) {
    const value = values[r] as number;
    if (!Number.isInteger(value) || value < 0 || value >= label.classes) {
      throw new TrainfleetError(
        Code.DATA_LOSS,
        `${where}: record ${r} has label ${value} in column "${label.column}", not a class 0..${label.classes - 1}; ` +
          "fix the data, or give the right class count (label.classes; --classes when converting)",
      );
    }
    labels[r] = value;
  }
  return { records, features, labels, targets: undefined };
}

function scaledFeatures(
  columns: BlockColumns,
  records: number,
  manifest: DatasetManifest,
  widths: Map<string, number>,
): Float32Array | Uint8Array {
  const mapping = manifest.features;
  if (mapping.decoder !== undefined) {
    throw new TrainfleetError(Code.INTERNAL, `the manifest's features.decoder is "${mapping.decoder}", but no decoded features were given`);
  }
  const { scale, offset } = mapping;
  const size = records * featureWidth(manifest);
  const bytes = byteFeatureTable(manifest) !== undefined;
  const features = bytes ? new Uint8Array(size) : new Float32Array(size);
  interleave(mapping.columns, columns, widths, records, features, bytes ? (value) => value : (value) => value * scale + offset);
  return features;
}

/** Writes each record's columns one after another into `out` (records x sum of widths), mapped and rounded to float32. */
function interleave(
  names: string[],
  columns: BlockColumns,
  widths: Map<string, number>,
  records: number,
  out: Float32Array | Uint8Array,
  map: (value: number) => number,
): void {
  const stride = out.length / records;
  let at = 0;
  for (const name of names) {
    const values = columns.get(name)!;
    const width = widths.get(name)!;
    for (let r = 0; r < records; r++) {
      const from = r * width;
      const to = r * stride + at;
      for (let j = 0; j < width; j++) out[to + j] = map(values[from + j] as number);
    }
    at += width;
  }
}

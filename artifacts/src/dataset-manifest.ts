/**
 * The manifest of a sharded dataset (`dataset.json`, as `trainfleet dataset convert` writes
 * it): the shard files with their record counts, byte ranges and sha256, the schema, and how
 * records become a sample's features and label. Blocks (Parquet row groups, Arrow record
 * batches) carry their own byte range and sha256, so a worker reads and verifies only the
 * bytes it needs. Every field is checked here, once; an error names the JSON path and the fix.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { SourceOptions } from "./byte-source.js";
import { openSource } from "./byte-source.js";
import { sha256Hex } from "./digest.js";

export const DATASET_MANIFEST_FORMAT = "trainfleet.dataset/v1";

export type DatasetFileFormat = "parquet" | "arrow";
export const datasetFileFormats: readonly DatasetFileFormat[] = ["parquet", "arrow"];

export type DatasetValueType = "uint8" | "int32" | "int64" | "float32" | "float64";
export const datasetValueTypes: readonly DatasetValueType[] = ["uint8", "int32", "int64", "float32", "float64"];

export interface DatasetColumn {
  name: string;
  type: DatasetValueType;
  /** A fixed-size vector of this many values per record (Parquet: a fixed-length byte array of little-endian values; Arrow: a fixed-size list). Absent: one value. */
  length?: number;
}

export interface DatasetByteRange {
  offset: number;
  length: number;
  sha256: string;
}

/** A Parquet row group or an Arrow record batch. */
export interface DatasetBlock extends DatasetByteRange {
  records: number;
}

export interface DatasetFile {
  /** Relative to the manifest. */
  path: string;
  records: number;
  bytes: number;
  /** Of the whole file, for `sha256sum`; readers verify the blocks and the footer instead. */
  sha256: string;
  /** Everything after the last block: the Parquet metadata or the Arrow footer, read once per file. */
  footer: DatasetByteRange;
  blocks: DatasetBlock[];
}

/** What every feature mapping has: the columns a sample's features come from, and the sample's shape. */
interface FeatureMapping {
  columns: string[];
  dtype: "float32";
  shape: number[];
}

/** x = value * scale + offset, rounded to float32, column after column, row-major into `shape`. */
export interface ScaledFeatures extends FeatureMapping {
  decoder?: undefined;
  scale: number;
  offset: number;
}

/**
 * The job's module turns the raw feature columns into features (its `decodeRecords`): `shape`
 * is the decoded shape, which need not hold as many values as the columns; the module does its
 * own scaling, so there is no scale or offset.
 */
export interface DecodedFeatures extends FeatureMapping {
  decoder: DatasetDecoder;
}

export type DatasetFeatures = ScaledFeatures | DecodedFeatures;

/** Who decodes the feature columns; "module": the job's module (spec.model.layers.module). */
export type DatasetDecoder = "module";
export const datasetDecoders: readonly DatasetDecoder[] = ["module"];

export type DatasetLabel = { kind: "classes"; column: string; classes: number } | { kind: "regression"; columns: string[]; size: number };

export interface DatasetManifest {
  format: typeof DATASET_MANIFEST_FORMAT;
  fileFormat: DatasetFileFormat;
  /** The sum of the files' records. */
  records: number;
  schema: DatasetColumn[];
  features: DatasetFeatures;
  label: DatasetLabel;
  files: DatasetFile[];
}

export interface ReadDatasetManifestOptions {
  /** Expected sha256 (hex) of the manifest; other bytes are refused. */
  sha256?: string | undefined;
  sources?: SourceOptions | undefined;
  signal?: AbortSignal | undefined;
}

export interface LoadedDatasetManifest {
  manifest: DatasetManifest;
  /** sha256 (hex) of the manifest's bytes. */
  digest: string;
  /** As given: what the shard paths resolve against (a URL's credentials carry over). */
  uri: string;
  /** As errors and logs may show it (credentials and signatures removed). */
  safeUri: string;
}

/** Values one record holds in a column. */
export function columnWidth(column: Pick<DatasetColumn, "length">): number {
  return column.length ?? 1;
}

/** Values in one sample's features. */
export function featureWidth(manifest: Pick<DatasetManifest, "features">): number {
  return manifest.features.shape.reduce((a, b) => a * b, 1);
}

/** Reads, checks the digest of, and parses a manifest. */
export async function readDatasetManifest(uri: string, options: ReadDatasetManifestOptions = {}): Promise<LoadedDatasetManifest> {
  const source = openSource(uri, options.sources);
  const bytes = await source.readAll(options.signal);
  const digest = sha256Hex(bytes);
  const expected = options.sha256?.toLowerCase();
  if (expected !== undefined && expected !== "" && expected !== digest) {
    throw new TrainfleetError(
      Code.DATA_LOSS,
      `${source.uri}: the manifest's sha256 is ${digest}, but ${expected} was expected: the file changed since the sha256 was taken; ` +
        "give the new sha256 (sha256sum dataset.json) or restore the manifest",
    );
  }
  return { manifest: parseDatasetManifest(bytes, source.uri), digest, uri, safeUri: source.uri };
}

/** Parses and validates a manifest's bytes; `uri` names it in errors. */
export function parseDatasetManifest(bytes: Uint8Array, uri: string): DatasetManifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new TrainfleetError(
      Code.INVALID_ARGUMENT,
      `${uri}: not a JSON dataset manifest (${(error as Error).message}); give the dataset.json that \`trainfleet dataset convert\` wrote`,
      { cause: error },
    );
  }
  return validateManifest(json, new FieldChecker(uri));
}

function validateManifest(json: unknown, check: FieldChecker): DatasetManifest {
  const root = check.object(json, "");
  const format = check.string(root.format, "format");
  if (format !== DATASET_MANIFEST_FORMAT) {
    throw check.fail(
      "format",
      `"${format}" is not a format this trainfleet reads (${DATASET_MANIFEST_FORMAT}); convert the data again with this version`,
    );
  }
  const fileFormat = check.choice(root.fileFormat, "fileFormat", datasetFileFormats);
  const schema = check.array(root.schema, "schema").map((column, i) => validateColumn(column, `schema[${i}]`, check));
  const columns = new Map<string, DatasetColumn>();
  schema.forEach((column, i) => {
    if (columns.has(column.name))
      throw check.fail(`schema[${i}].name`, `column "${column.name}" is listed twice; column names must be unique`);
    columns.set(column.name, column);
  });
  const features = validateFeatures(root.features, columns, check);
  const label = validateLabel(root.label, columns, new Set(features.columns), check);
  const files = check.array(root.files, "files").map((file, i) => validateFile(file, `files[${i}]`, check));
  const paths = new Set<string>();
  files.forEach((file, i) => {
    if (paths.has(file.path)) throw check.fail(`files[${i}].path`, `"${file.path}" is listed twice; each shard file once`);
    paths.add(file.path);
  });
  const records = check.count(root.records, "records", 1);
  const sum = files.reduce((total, file) => total + file.records, 0);
  if (sum !== records)
    throw check.fail("records", `says ${records}, but the files hold ${sum}; the manifest is inconsistent: convert the data again`);
  return { format: DATASET_MANIFEST_FORMAT, fileFormat, records, schema, features, label, files };
}

function validateColumn(json: unknown, path: string, check: FieldChecker): DatasetColumn {
  const column = check.object(json, path);
  const name = check.string(column.name, `${path}.name`);
  const type = check.choice(column.type, `${path}.type`, datasetValueTypes);
  if (column.length === undefined) return { name, type };
  return { name, type, length: check.count(column.length, `${path}.length`, 1) };
}

function validateFeatures(json: unknown, columns: Map<string, DatasetColumn>, check: FieldChecker): DatasetFeatures {
  const features = check.object(json, "features");
  const names = check.columnNames(features.columns, "features.columns", columns);
  if (check.string(features.dtype, "features.dtype") !== "float32") throw check.fail("features.dtype", 'only "float32" is supported');
  const shape = check.array(features.shape, "features.shape").map((d, i) => check.count(d, `features.shape[${i}]`, 1));
  if (features.decoder !== undefined) {
    const decoder = check.choice(features.decoder, "features.decoder", datasetDecoders);
    for (const field of ["scale", "offset"] as const) {
      if (features[field] !== undefined) {
        throw check.fail(
          `features.${field}`,
          `is not applied when features.decoder is "${decoder}": the decoder does its own scaling; remove features.scale and features.offset, or remove features.decoder`,
        );
      }
    }
    return { columns: names, dtype: "float32", shape, decoder };
  }
  const width = names.reduce((total, name) => total + columnWidth(columns.get(name)!), 0);
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== width) {
    throw check.fail(
      "features.shape",
      `[${shape.join(", ")}] holds ${size} values, but the feature columns hold ${width} per record; give a shape whose product is ${width} ` +
        '(or features.decoder "module" when the job\'s module decodes the columns into this shape)',
    );
  }
  const scale = check.finite(features.scale, "features.scale");
  const offset = check.finite(features.offset, "features.offset");
  return { columns: names, dtype: "float32", shape, scale, offset };
}

function validateLabel(json: unknown, columns: Map<string, DatasetColumn>, featureNames: Set<string>, check: FieldChecker): DatasetLabel {
  const label = check.object(json, "label");
  const kind = check.choice(label.kind, "label.kind", ["classes", "regression"] as const);
  const notFeature = (name: string, path: string) => {
    if (featureNames.has(name)) throw check.fail(path, `"${name}" is also a feature column; a label must not be an input`);
  };
  if (kind === "classes") {
    const column = check.column(label.column, "label.column", columns);
    notFeature(column, "label.column");
    const { type, length } = columns.get(column)!;
    if (length !== undefined || !["uint8", "int32", "int64"].includes(type)) {
      throw check.fail(
        "label.column",
        `"${column}" is ${length === undefined ? type : `${type}[${length}]`}; class labels need one integer per record`,
      );
    }
    return { kind, column, classes: check.count(label.classes, "label.classes", 1) };
  }
  const names = check.columnNames(label.columns, "label.columns", columns);
  names.forEach((name, i) => notFeature(name, `label.columns[${i}]`));
  const width = names.reduce((total, name) => total + columnWidth(columns.get(name)!), 0);
  const size = check.count(label.size, "label.size", 1);
  if (size !== width) throw check.fail("label.size", `says ${size}, but the label columns hold ${width} values per record`);
  return { kind, columns: names, size };
}

function validateFile(json: unknown, path: string, check: FieldChecker): DatasetFile {
  const file = check.object(json, path);
  const name = check.string(file.path, `${path}.path`);
  if (/^[a-z][a-z0-9+.-]*:/i.test(name) || name.startsWith("/") || name.split(/[\\/]/).includes("..")) {
    throw check.fail(`${path}.path`, `"${name}" must be a path relative to the manifest, inside its folder (no URL, no leading /, no ..)`);
  }
  const bytes = check.count(file.bytes, `${path}.bytes`, 1);
  const footer = validateRange(file.footer, `${path}.footer`, check);
  if (footer.offset + footer.length !== bytes) {
    throw check.fail(
      `${path}.footer`,
      `ends at byte ${footer.offset + footer.length}, but the file has ${bytes} bytes; the footer is the file's tail`,
    );
  }
  const blocks = check.array(file.blocks, `${path}.blocks`).map((block, i) => {
    const blockPath = `${path}.blocks[${i}]`;
    return {
      records: check.count(check.object(block, blockPath).records, `${blockPath}.records`, 1),
      ...validateRange(block, blockPath, check),
    };
  });
  if (blocks.length === 0) throw check.fail(`${path}.blocks`, "lists no blocks; a file holds at least one row group or record batch");
  let end = 0;
  blocks.forEach((block, i) => {
    if (block.offset < end)
      throw check.fail(
        `${path}.blocks[${i}].offset`,
        `${block.offset} overlaps the previous block (ends at ${end}); blocks are listed in file order`,
      );
    end = block.offset + block.length;
  });
  if (end > footer.offset)
    throw check.fail(`${path}.blocks`, `the last block ends at byte ${end}, after the footer starts (${footer.offset})`);
  const records = check.count(file.records, `${path}.records`, 1);
  const sum = blocks.reduce((total, block) => total + block.records, 0);
  if (sum !== records)
    throw check.fail(
      `${path}.records`,
      `says ${records}, but its blocks hold ${sum} (file ${name}); the manifest is inconsistent: convert the data again`,
    );
  return { path: name, records, bytes, sha256: check.sha256(file.sha256, `${path}.sha256`), footer, blocks };
}

function validateRange(json: unknown, path: string, check: FieldChecker): DatasetByteRange {
  const range = check.object(json, path);
  return {
    offset: check.count(range.offset, `${path}.offset`, 0),
    length: check.count(range.length, `${path}.length`, 1),
    sha256: check.sha256(range.sha256, `${path}.sha256`),
  };
}

/** Type checks that name the JSON path and the manifest in their errors. */
class FieldChecker {
  constructor(readonly uri: string) {}

  fail(path: string, problem: string): TrainfleetError {
    const field = path === "" ? "(the top level)" : path;
    return new TrainfleetError(Code.INVALID_ARGUMENT, `${this.uri}: ${field}: ${problem}`, { field: path });
  }

  object(value: unknown, path: string): Record<string, unknown> {
    if (typeof value !== "object" || value === null || Array.isArray(value))
      throw this.fail(path, `expected an object, found ${describe(value)}`);
    return value as Record<string, unknown>;
  }

  array(value: unknown, path: string): unknown[] {
    if (!Array.isArray(value)) throw this.fail(path, `expected an array, found ${describe(value)}`);
    if (value.length === 0) throw this.fail(path, "is empty");
    return value;
  }

  string(value: unknown, path: string): string {
    if (typeof value !== "string" || value === "") throw this.fail(path, `expected a non-empty string, found ${describe(value)}`);
    return value;
  }

  choice<T extends string>(value: unknown, path: string, choices: readonly T[]): T {
    if (!choices.includes(value as T))
      throw this.fail(path, `expected one of ${choices.map((c) => `"${c}"`).join(", ")}, found ${describe(value)}`);
    return value as T;
  }

  count(value: unknown, path: string, min: number): number {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
      throw this.fail(path, `expected an integer of at least ${min}, found ${describe(value)}`);
    }
    return value;
  }

  finite(value: unknown, path: string): number {
    if (typeof value !== "number" || !Number.isFinite(value)) throw this.fail(path, `expected a finite number, found ${describe(value)}`);
    return value;
  }

  sha256(value: unknown, path: string): string {
    if (typeof value !== "string" || !/^[0-9a-f]{64}$/.test(value))
      throw this.fail(path, `expected 64 lower-case hex digits (a sha256), found ${describe(value)}`);
    return value;
  }

  column(value: unknown, path: string, columns: Map<string, DatasetColumn>): string {
    const name = this.string(value, path);
    if (!columns.has(name)) throw this.fail(path, `"${name}" is not a column of the schema (${[...columns.keys()].join(", ")})`);
    return name;
  }

  columnNames(value: unknown, path: string, columns: Map<string, DatasetColumn>): string[] {
    const names = this.array(value, path).map((name, i) => this.column(name, `${path}[${i}]`, columns));
    // A set, not indexOf: a manifest may list tens of thousands of columns.
    const seen = new Set<string>();
    names.forEach((name, i) => {
      if (seen.has(name)) throw this.fail(`${path}[${i}]`, `"${name}" is listed twice`);
      seen.add(name);
    });
    return names;
  }
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing (the field is missing)";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${JSON.stringify(value)}`;
}

/**
 * Decides what a conversion writes, before anything is written: which input columns are
 * features and label, each column's stored type, the class count, and the manifest's
 * feature and label mapping. Pure, so every choice is checked up front and named in errors.
 */
import type { DatasetColumn, DatasetFeatures, DatasetLabel } from "@trainfleet/artifacts";
import { invalidField } from "@trainfleet/proto";
import type { RecordTable, TableColumn } from "./record-table.js";
import { castColumn, schemaColumn, storedType } from "./record-table.js";

export interface PlanOptions {
  /** Column names or indices (negative: from the end); default: the last column. Several only with regression. */
  labelColumns?: string[] | undefined;
  regression?: boolean | undefined;
  classes?: number | undefined;
  /** Column names or indices; default: every column that is not a label. */
  featureColumns?: string[] | undefined;
  /** The sample's shape; with a decoder, the shape the module decodes a record into (required then). */
  shape?: number[] | undefined;
  scale?: number | undefined;
  offset?: number | undefined;
  /** "module": the job's module decodes the feature columns (features.decoder); no scale or offset then. */
  decoder?: NonNullable<DatasetFeatures["decoder"]> | undefined;
}

export interface ConversionPlan {
  schema: DatasetColumn[];
  features: DatasetFeatures;
  label: DatasetLabel;
  /** The tables reduced to the schema's columns, in its order and types. */
  tables: RecordTable[];
}

/** `tables` share their columns (a training input and a separate test input); `defaults` come from the input format. */
export function planConversion(
  tables: RecordTable[],
  options: PlanOptions,
  defaults: { shape?: number[]; scale?: number },
): ConversionPlan {
  const first = tables[0]!;
  const names = first.columns.map((column) => column.name);
  const labelNames = (options.labelColumns ?? [String(-1)]).map((selector) => resolveColumn(selector, names, "--label-column"));
  if (!options.regression && labelNames.length !== 1)
    throw invalidField("--label-column", "give one label column for classes, or --regression for several");
  const featureNames =
    options.featureColumns?.map((selector) => resolveColumn(selector, names, "--feature-columns")) ??
    names.filter((n) => !labelNames.includes(n));
  if (featureNames.length === 0) throw invalidField("--feature-columns", "no column is left for the features");
  const overlap = featureNames.find((name) => labelNames.includes(name));
  if (overlap !== undefined) throw invalidField("--feature-columns", `"${overlap}" is also the label; a label must not be an input`);
  const used = names.filter((name) => featureNames.includes(name) || labelNames.includes(name));
  const types = new Map(used.map((name) => [name, storedType(tables.map((table) => columnOf(table, name)))]));
  const schema = used.map((name) => schemaColumn(columnOf(first, name), types.get(name)!));
  const reduced = tables.map((table) => ({
    records: table.records,
    columns: used.map((name) => castColumn(columnOf(table, name), types.get(name)!)),
  }));

  const features = planFeatures(
    featureNames,
    featureNames.reduce((total, name) => total + columnOf(first, name).width, 0),
    options,
    defaults,
  );
  if (options.regression) {
    const size = labelNames.reduce((total, name) => total + columnOf(first, name).width, 0);
    return { schema, features, label: { kind: "regression", columns: labelNames, size }, tables: reduced };
  }
  const column = labelNames[0]!;
  return {
    schema,
    features,
    label: {
      kind: "classes",
      column,
      classes: classCount(
        tables.map((t) => columnOf(t, column)),
        types.get(column)!,
        options.classes,
      ),
    },
    tables: reduced,
  };
}

/** The features' mapping: scaled columns whose shape holds `width` values, or the shape a decoder makes of them. */
function planFeatures(
  columns: string[],
  width: number,
  options: PlanOptions,
  defaults: { shape?: number[]; scale?: number },
): DatasetFeatures {
  const shape = options.shape;
  if (shape !== undefined && (shape.length === 0 || shape.some((d) => !Number.isSafeInteger(d) || d < 1)))
    throw invalidField("--shape", `[${shape.join(", ")}] needs one or more positive integer dimensions`);
  if (options.decoder !== undefined) {
    if (shape === undefined)
      throw invalidField("--shape", `goes with --decoder ${options.decoder}: give the shape decodeRecords makes of a record, e.g. 80`);
    for (const flag of ["scale", "offset"] as const) {
      if (options[flag] !== undefined)
        throw invalidField(
          `--${flag}`,
          `is not applied with --decoder ${options.decoder}: the decoder does its own scaling; leave --${flag} out`,
        );
    }
    return { columns, dtype: "float32", shape, decoder: options.decoder };
  }
  const scaled = shape ?? defaults.shape ?? [width];
  if (scaled.reduce((a, b) => a * b, 1) !== width) {
    throw invalidField(
      "--shape",
      `[${scaled.join(", ")}] does not hold the ${width} feature values per record; give dimensions whose product is ${width} ` +
        "(or --decoder module when the job's module decodes the columns into this shape)",
    );
  }
  return { columns, dtype: "float32", shape: scaled, scale: options.scale ?? defaults.scale ?? 1, offset: options.offset ?? 0 };
}

function classCount(columns: TableColumn[], type: string, given: number | undefined): number {
  const name = columns[0]!.name;
  if (columns[0]!.width !== 1 || (type !== "uint8" && type !== "int32")) {
    throw invalidField(
      "--label-column",
      `"${name}" holds ${columns[0]!.width === 1 ? "non-integer values" : "vectors"}; class labels are integers 0..K-1 (give --regression for numeric targets)`,
    );
  }
  let max = -1;
  for (const { values } of columns) {
    for (const value of values) {
      if (value < 0) throw invalidField("--label-column", `"${name}" holds ${value}; class labels are integers 0..K-1`);
      max = Math.max(max, value);
    }
  }
  if (given === undefined) return max + 1;
  if (max >= given) throw invalidField("--classes", `is ${given}, but column "${name}" holds the label ${max}; give at least ${max + 1}`);
  return given;
}

function resolveColumn(selector: string, names: string[], flag: string): string {
  if (names.includes(selector)) return selector;
  if (/^-?\d+$/.test(selector)) {
    const index = Number(selector) < 0 ? names.length + Number(selector) : Number(selector);
    const name = names[index];
    if (name !== undefined) return name;
  }
  throw invalidField(
    flag,
    `"${selector}" is neither a column name nor an index of the input's ${names.length} columns (${names.slice(0, 8).join(", ")}${names.length > 8 ? ", ..." : ""})`,
  );
}

function columnOf(table: RecordTable, name: string): TableColumn {
  const column = table.columns.find((c) => c.name === name);
  if (column === undefined)
    throw invalidField("--test-input", `has no column "${name}"; the test input needs the training input's columns`);
  return column;
}

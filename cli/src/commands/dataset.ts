/**
 * `trainfleet dataset convert`: turns a CSV file or IDX files into a sharded Parquet or
 * Arrow dataset with its manifest (dataset.json), so training never parses text. The work is
 * the worker's converter; this file only maps flags to its options and prints what it wrote.
 */

// Only the header kinds, for the flag table: every process loads this file, and the converter's readers and writers are loaded when it runs.
import { csvHeaders } from "@trainfleet/worker/csv-header";
import type { ConvertOptions, CsvHeader } from "@trainfleet/worker/dataset";
import type { Command } from "../command.js";
import { requireString } from "../command.js";
import { commonFlags } from "../common-flags.js";
import type { FlagValue } from "../flags.js";
import { UsageError } from "../flags.js";

export const datasetCommand: Command = {
  name: "dataset",
  usage: "trainfleet dataset convert INPUT --out DIR [--labels FILE] [--format parquet|arrow] [flags]",
  summary:
    "Converts data for training. `dataset convert` reads a numeric CSV file (gzipped or not; the label in the last column unless --label-column says otherwise) or IDX images with --labels (as Fashion-MNIST's files), and writes shard files (Parquet or Arrow IPC) of blocks a worker reads one at a time, with their manifest DIR/dataset.json (and DIR/eval-dataset.json with --eval-fraction or --test-input). Train on it with `trainfleet run --dataset DIR/dataset.json`. The same input and flags always give the same bytes.",
  positionals: ["action", "input"],
  flags: {
    action: { kind: "string", choices: ["convert"], help: "What to do (required; may be given as the first argument): convert." },
    input: { kind: "string", help: "The CSV file, or the IDX images file (required; may be given as the second argument)." },
    labels: { kind: "string", help: "The IDX labels file of --input; giving it makes --input IDX images." },
    "test-input": { kind: "string", help: "A separate evaluation input in the same form as --input, written as DIR/eval-dataset.json." },
    "test-labels": { kind: "string", help: "The IDX labels file of --test-input." },
    out: { kind: "string", help: "The folder to write the shards and manifests into (required; created if missing)." },
    format: {
      kind: "string",
      choices: ["parquet", "arrow"],
      default: "parquet",
      help: "The shard file format: Parquet or Arrow IPC file.",
    },
    "records-per-file": { kind: "integer", min: 1, default: "50000", help: "Records in each shard file." },
    "records-per-block": {
      kind: "integer",
      min: 1,
      default: "1024",
      help: "Records in each block (Parquet row group, Arrow record batch): the unit a worker reads and verifies.",
    },
    "label-column": {
      kind: "string",
      help: "The label column, by name or index (negative counts from the end; default -1, the last); with --regression a comma-separated list.",
    },
    classes: { kind: "integer", min: 1, help: "The class count (default: the largest label + 1)." },
    regression: { kind: "boolean", help: "The label columns are numeric targets (mean squared error), not class indices." },
    "feature-columns": {
      kind: "string",
      help: "Comma-separated feature columns, by name or index, in the order they make a sample (default: every column that is not a label).",
    },
    shape: {
      kind: "list",
      help: "One sample's feature shape, e.g. 8,8,1 (default: the number of feature values; for IDX images rows,cols,1); with --decoder, the shape decodeRecords makes of a record.",
    },
    scale: {
      kind: "string",
      help: "Features are value * scale + offset: a number or a fraction such as 1/255 (default 1; for IDX images 1/255).",
    },
    offset: { kind: "number", help: "Added to each scaled feature (default 0)." },
    decoder: {
      kind: "string",
      choices: ["module"],
      help: "module: the job's module (--model-module) decodes the feature columns with its decodeRecords; --shape is then the decoded shape (required), and --scale and --offset are not applied.",
    },
    header: {
      kind: "string",
      choices: csvHeaders,
      default: "auto",
      help: "What a CSV's first line is: column names, none (data), or sklearn (scikit-learn's line of counts); auto decides from the line.",
    },
    "eval-fraction": { kind: "number", help: "Move this fraction of the records (chosen by --seed) to the evaluation set." },
    seed: { kind: "integer", default: "0", help: "Seed of the evaluation split and of --shuffle." },
    shuffle: { kind: "boolean", help: "Shuffle the training records (by --seed) before sharding, e.g. for an input sorted by class." },
    "log-level": commonFlags["log-level"]!,
  },
  async run({ values, signal }) {
    const { convertDataset } = await import("@trainfleet/worker/dataset");
    const result = await convertDataset(convertOptions(values, signal, (line) => process.stdout.write(`${line}\n`)));
    const evalFlag = result.evaluation === undefined ? "" : ` --eval-dataset ${result.evaluation.path}`;
    process.stdout.write(`train with: trainfleet run --dataset ${result.train.path}${evalFlag}\n`);
    return 0;
  },
};

/** The converter's options from the parsed flags; `report` gets each progress line. */
export function convertOptions(
  values: Record<string, FlagValue>,
  signal: AbortSignal | undefined,
  report: (line: string) => void,
): ConvertOptions {
  if (requireString(values, "action") !== "convert") throw new UsageError(`unknown action "${values.action}"; see --help`);
  const list = (name: string) => (values[name] === undefined ? undefined : (values[name] as string).split(",").map((s) => s.trim()));
  return {
    input: requireString(values, "input"),
    labels: values.labels as string | undefined,
    testInput: values["test-input"] as string | undefined,
    testLabels: values["test-labels"] as string | undefined,
    header: values.header as CsvHeader | undefined,
    out: requireString(values, "out"),
    fileFormat: values.format as "parquet" | "arrow",
    recordsPerFile: values["records-per-file"] as number,
    recordsPerBlock: values["records-per-block"] as number,
    labelColumns: list("label-column"),
    regression: values.regression === true,
    classes: values.classes as number | undefined,
    featureColumns: list("feature-columns"),
    shape: values.shape as number[] | undefined,
    scale: values.scale === undefined ? undefined : parseScale(values.scale as string),
    offset: values.offset as number | undefined,
    decoder: values.decoder as "module" | undefined,
    evalFraction: values["eval-fraction"] as number | undefined,
    seed: values.seed as number,
    shuffle: values.shuffle === true,
    signal,
    report,
  };
}

/** A number, or a fraction a/b computed as a / b (so 1/255 is exactly the double 1 / 255). */
function parseScale(text: string): number {
  const fraction = /^\s*([^/]+)\/([^/]+)\s*$/.exec(text);
  const value = fraction === null ? Number(text) : Number(fraction[1]) / Number(fraction[2]);
  if (text.trim() === "" || !Number.isFinite(value))
    throw new UsageError(`--scale: expected a number or a fraction such as 1/255, got "${text}"`);
  return value;
}

/**
 * `trainfleet dataset convert` as a library: reads a CSV or IDX input (and optionally a
 * separate test input), plans the columns, splits off an evaluation set if asked, and writes
 * Parquet or Arrow shards with their manifests (dataset.json, eval-dataset.json). Every
 * choice is seeded, so the same input and options give the same bytes and digests.
 * Shards are written before their manifest, and a manifest by rename, so a run that fails
 * midway never leaves a manifest that names missing or partial files.
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DatasetFile, DatasetFileFormat, DatasetManifest } from "@trainfleet/artifacts";
import { DATASET_MANIFEST_FORMAT, parseDatasetManifest, sha256Hex } from "@trainfleet/artifacts";
import { invalidField } from "@trainfleet/proto";
import type { ConversionPlan, PlanOptions } from "./conversion-plan.js";
import { planConversion } from "./conversion-plan.js";
import type { CsvHeader } from "./csv-header.js";
import { manifestJson } from "./manifest-json.js";
import { readCsv } from "./read-csv.js";
import { readIdx } from "./read-idx.js";
import type { RecordTable } from "./record-table.js";
import { sliceRecords, takeRecords } from "./record-table.js";
import type { ShardWriter } from "./shard-writer.js";
import { shuffled, splitRecords } from "./split-records.js";
import { writeArrowShard } from "./write-arrow.js";
import { writeParquetShard } from "./write-parquet.js";

export interface ConvertOptions extends PlanOptions {
  /** A CSV file, or IDX images when `labels` is given. */
  input: string;
  labels?: string | undefined;
  /** A separate evaluation input, in the same form as `input`. */
  testInput?: string | undefined;
  testLabels?: string | undefined;
  header?: CsvHeader | undefined;
  out: string;
  fileFormat: DatasetFileFormat;
  recordsPerFile: number;
  recordsPerBlock: number;
  /** Records moved to the evaluation set, chosen by `seed` (exclusive with testInput). */
  evalFraction?: number | undefined;
  seed?: number | undefined;
  /** Shuffle the training records (by `seed`) before sharding. */
  shuffle?: boolean | undefined;
  signal?: AbortSignal | undefined;
  report?: ((line: string) => void) | undefined;
}

export interface WrittenManifest {
  path: string;
  digest: string;
  records: number;
  files: number;
}

export interface ConvertResult {
  train: WrittenManifest;
  evaluation: WrittenManifest | undefined;
}

const writers: Record<DatasetFileFormat, ShardWriter> = { parquet: writeParquetShard, arrow: writeArrowShard };

export async function convertDataset(options: ConvertOptions): Promise<ConvertResult> {
  checkOptions(options);
  const report = options.report ?? (() => {});
  const train = await readInput(options.input, options.labels, options);
  const test = options.testInput === undefined ? undefined : await readInput(options.testInput, options.testLabels, options);
  report(
    `read ${train.table.records} records from ${options.input}${test === undefined ? "" : ` and ${test.table.records} from ${options.testInput}`}`,
  );
  const plan = planConversion(test === undefined ? [train.table] : [train.table, test.table], options, train.defaults);
  let [trainTable, evalTable] = plan.tables as [RecordTable, RecordTable | undefined];
  if (options.evalFraction !== undefined) {
    const split = splitRecords(trainTable.records, options.evalFraction, options.seed ?? 0);
    evalTable = takeRecords(trainTable, split.evaluation);
    trainTable = takeRecords(trainTable, split.train);
  }
  if (options.shuffle) trainTable = takeRecords(trainTable, shuffled(trainTable.records, options.seed ?? 0));
  await mkdir(options.out, { recursive: true });
  return {
    train: await writeDataset(trainTable, plan, "train", "dataset.json", options, report),
    evaluation: evalTable === undefined ? undefined : await writeDataset(evalTable, plan, "eval", "eval-dataset.json", options, report),
  };
}

function checkOptions(options: ConvertOptions): void {
  if (options.recordsPerBlock < 1) throw invalidField("--records-per-block", "must be at least 1");
  if (options.recordsPerFile < options.recordsPerBlock)
    throw invalidField("--records-per-file", `must be at least --records-per-block (${options.recordsPerBlock})`);
  if (options.evalFraction !== undefined && !(options.evalFraction > 0 && options.evalFraction < 1))
    throw invalidField("--eval-fraction", "must be between 0 and 1");
  if (options.evalFraction !== undefined && options.testInput !== undefined)
    throw invalidField("--eval-fraction", "give either --eval-fraction or --test-input, not both");
  if (options.testInput !== undefined && (options.labels === undefined) !== (options.testLabels === undefined)) {
    throw invalidField(
      "--test-labels",
      "an IDX input needs labels for both --input (--labels) and --test-input (--test-labels); a CSV needs neither",
    );
  }
}

async function readInput(
  path: string,
  labels: string | undefined,
  options: ConvertOptions,
): Promise<{ table: RecordTable; defaults: { shape?: number[]; scale?: number } }> {
  if (labels !== undefined) {
    const idx = await readIdx(path, labels);
    return { table: idx.table, defaults: { shape: idx.shape, scale: 1 / 255 } };
  }
  const csv = await readCsv(path, options.header ?? "auto", options.signal);
  options.report?.(
    `${path}: first line read as ${csv.header === "names" ? "column names" : csv.header === "sklearn" ? "a scikit-learn header (skipped)" : "data (no header)"}`,
  );
  return { table: csv.table, defaults: {} };
}

async function writeDataset(
  table: RecordTable,
  plan: ConversionPlan,
  prefix: string,
  manifestName: string,
  options: ConvertOptions,
  report: (line: string) => void,
): Promise<WrittenManifest> {
  if (table.records === 0)
    throw invalidField(
      prefix === "eval" ? "--eval-fraction" : "--input",
      `leaves no ${prefix === "eval" ? "evaluation" : "training"} records`,
    );
  const files: DatasetFile[] = [];
  const fileCount = Math.ceil(table.records / options.recordsPerFile);
  for (let i = 0; i < fileCount; i++) {
    options.signal?.throwIfAborted();
    const start = i * options.recordsPerFile;
    const shard = writers[options.fileFormat](
      sliceRecords(table, start, Math.min(start + options.recordsPerFile, table.records)),
      plan.schema,
      options.recordsPerBlock,
    );
    const path = `${prefix}-${String(i).padStart(5, "0")}.${options.fileFormat}`;
    await writeFile(join(options.out, path), shard.bytes);
    const range = <R extends { offset: number; length: number }>(r: R) => ({
      ...r,
      sha256: sha256Hex(shard.bytes.subarray(r.offset, r.offset + r.length)),
    });
    const records = shard.blocks.reduce((total, block) => total + block.records, 0);
    files.push({
      path,
      records,
      bytes: shard.bytes.length,
      sha256: sha256Hex(shard.bytes),
      footer: range(shard.footer),
      blocks: shard.blocks.map(range),
    });
    report(`wrote ${join(options.out, path)}: ${records} records in ${shard.blocks.length} blocks, ${shard.bytes.length} bytes`);
  }
  const manifest: DatasetManifest = {
    format: DATASET_MANIFEST_FORMAT,
    fileFormat: options.fileFormat,
    records: table.records,
    schema: plan.schema,
    features: plan.features,
    label: plan.label,
    files,
  };
  const bytes = new TextEncoder().encode(manifestJson(manifest));
  const path = join(options.out, manifestName);
  parseDatasetManifest(bytes, path); // what a worker will check, checked before it is written
  await writeFile(`${path}.partial`, bytes);
  await rename(`${path}.partial`, path);
  const digest = sha256Hex(bytes);
  report(`wrote ${path}: ${table.records} records in ${files.length} files, sha256 ${digest}`);
  return { path, digest, records: table.records, files: files.length };
}

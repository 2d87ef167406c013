/**
 * A manifest whose features the job's module decodes (features.decoder "module"): the digits
 * converted to Parquet and Arrow with the decoded shape [80], read through openTrainingData and
 * openShardedRecords with real module files. The samples are exactly what the module's
 * decodeRecords returns (checked against the CSV, decoded here independently), each block is
 * decoded once, and a module that is missing, lacks the export, or returns the wrong number of
 * values or a NaN fails naming the module, the manifest or the file and block.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { create } from "@bufbuild/protobuf";
import { readDatasetManifest } from "@trainfleet/artifacts";
import { Code, DatasetSpecSchema } from "@trainfleet/proto";
import { digitsCsvPath } from "@trainfleet/testing/fixtures/digits-dataset";
import { repoPath } from "@trainfleet/testing/manifests";
import { rejection } from "@trainfleet/testing/rejection";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConvertOptions } from "../src/dataset/convert/convert-dataset.js";
import { convertDataset } from "../src/dataset/convert/convert-dataset.js";
import { datasetFacts } from "../src/dataset/dataset-facts.js";
import { loadRecordDecoder } from "../src/dataset/record-decoder.js";
import type { TrainingData } from "../src/dataset/record-set.js";
import { openShardedRecords } from "../src/dataset/sharded-records.js";
import { openTrainingData } from "../src/dataset/training-data.js";
import { digitsRows } from "./dataset-fixtures.js";

const formats = ["parquet", "arrow"] as const;
/** The real user module of the fleet test: 64 pixels to 80 features. */
const decoderModule = repoPath("testing", "src", "fixtures", "digits-decoder.mjs");
let dir: string;
let rows: number[][];
const open: TrainingData[] = [];

/** Modules a test writes into its folder, by name. */
const modules = {
  // Exports what a layers module may, but no decoder.
  noDecoder: "export function loss(tf, labels, predictions) { return tf.losses.meanSquaredError(labels, predictions); }\n",
  notAFunction: "export const decodeRecords = 80;\n",
  // One value short in every block.
  shortByOne: "export function decodeRecords({ records }) { return new Float32Array(records * 80 - 1); }\n",
  // A NaN in the third record of every block.
  nan: "export function decodeRecords({ records }) { const x = new Array(records * 80).fill(0.5); x[2 * 80 + 7] = Number.NaN; return x; }\n",
  throws: 'export function decodeRecords() { throw new Error("no pixel column named image"); }\n',
  // An async decoder giving plain numbers: record r's features are all r's label column... here its first pixel.
  asyncPlain:
    "export async function decodeRecords({ records, columns }) { const c0 = columns.c0; return Array.from({ length: records * 80 }, (_, i) => c0[Math.floor(i / 80)] + (i % 80)); }\n",
};
const modulePath = (name: keyof typeof modules) => join(dir, `${name}.mjs`);

function convertOptions(fileFormat: (typeof formats)[number], out: string, more: Partial<ConvertOptions> = {}): ConvertOptions {
  return {
    input: "",
    out: join(dir, out),
    fileFormat,
    recordsPerFile: 1000,
    recordsPerBlock: 100,
    decoder: "module",
    shape: [80],
    ...more,
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tf-decoder-"));
  rows = await digitsRows();
  const input = await digitsCsvPath();
  for (const fileFormat of formats) await convertDataset({ ...convertOptions(fileFormat, fileFormat), input });
  // The same records scaled, not decoded: an evaluation set that does not match a decoded training set.
  await convertDataset({ ...convertOptions("parquet", "scaled", { decoder: undefined, shape: undefined, scale: 1 / 16 }), input });
  // Decoded into as many values as the scaled set holds: the same shape, a different mapping.
  await convertDataset({ ...convertOptions("parquet", "decoded64", { shape: [64] }), input });
  for (const [name, source] of Object.entries(modules)) await writeFile(modulePath(name as keyof typeof modules), source);
});
afterAll(async () => {
  for (const data of open) await data.close();
  await rm(dir, { recursive: true, force: true });
});

const manifestPath = (folder: string) => join(dir, folder, "dataset.json");

async function openDecoded(manifest: string, module: string | undefined, evalManifest = ""): Promise<TrainingData> {
  const data = await openTrainingData(create(DatasetSpecSchema, { manifest, evalManifest }), { dataDirs: [], module });
  open.push(data);
  return data;
}

/** The 80 features of a CSV row, computed here: pixels / 16, then row sums and column sums / 128, each rounded to float32. */
function decodedRow(row: number[]): number[] {
  const pixels = row.slice(0, 64);
  const sum = (pick: (j: number) => number) => Array.from({ length: 8 }, (_, j) => pick(j)).reduce((a, b) => a + b, 0);
  const rowSums = Array.from({ length: 8 }, (_, i) => sum((j) => pixels[i * 8 + j]!) / 128);
  const columnSums = Array.from({ length: 8 }, (_, i) => sum((j) => pixels[j * 8 + i]!) / 128);
  return [...pixels.map((p) => p / 16), ...rowSums, ...columnSums].map(Math.fround);
}

describe.each(formats)("digits converted to %s with features.decoder module and shape [80]", (fileFormat) => {
  it("writes the decoded shape and no scale into the manifest, and pins decodedByModule", async () => {
    const manifest = JSON.parse(await readFile(manifestPath(fileFormat), "utf8"));
    expect(manifest.features).toEqual({
      columns: Array.from({ length: 64 }, (_, i) => `c${i}`),
      dtype: "float32",
      shape: [80],
      decoder: "module",
    });
    const facts = await datasetFacts(create(DatasetSpecSchema, { manifest: manifestPath(fileFormat) }));
    expect([facts.decodedByModule, facts.featureShape, facts.trainRecords]).toEqual([true, [80], 1797]);
    const scaled = await datasetFacts(create(DatasetSpecSchema, { manifest: manifestPath("scaled") }));
    expect([scaled.decodedByModule, scaled.featureShape]).toEqual([false, [64]]);
  });

  it("gives exactly the features the module decodes, and the labels of the manifest", async () => {
    const data = await openDecoded(manifestPath(fileFormat), decoderModule);
    expect(data.train.count).toBe(1797);
    const indices = [0, 1796, 99, 100, 999, 1000, 1234, 5, 5, 1500];
    const batch = await data.train.batch(indices);
    expect(batch.x).toEqual(Float32Array.from(indices.flatMap((index) => decodedRow(rows[index]!))));
    expect(Array.from(batch.labels)).toEqual(indices.map((index) => rows[index]![64]));
    // Evaluation reads the training manifest here, through the same decoder.
    expect((await data.eval.batch([1234])).x).toEqual(Float32Array.from(decodedRow(rows[1234]!)));
  });

  it("through openShardedRecords, decodes each block once: the cache keeps the result", async () => {
    const loaded = await readDatasetManifest(manifestPath(fileFormat));
    // The test's import of the module is the instance the reader calls (Node caches import()).
    const { calls } = (await import(pathToFileURL(decoderModule).href)) as { calls: number[] };
    const before = calls.length;
    const records = openShardedRecords(loaded, { decoder: await loadRecordDecoder(decoderModule, loaded) });
    try {
      const first = await records.batch([3, 50, 1001]);
      expect(calls.slice(before)).toEqual([100, 100]);
      expect(first.x).toEqual(Float32Array.from([3, 50, 1001].flatMap((index) => decodedRow(rows[index]!))));
      await records.batch([99, 1099, 1700]);
      // Blocks 0 and 10 were cached; block 17 is new.
      expect(calls.slice(before)).toEqual([100, 100, 97]);
    } finally {
      records.close();
    }
  });

  it("takes an async decoder returning plain numbers, rounded to float32", async () => {
    const data = await openDecoded(manifestPath(fileFormat), modulePath("asyncPlain"));
    const batch = await data.train.batch([2, 1796]);
    const expected = [2, 1796].flatMap((index) => Array.from({ length: 80 }, (_, i) => rows[index]![0]! + i));
    expect(batch.x).toEqual(Float32Array.from(expected));
  });
});

describe("a decoded manifest that cannot be decoded", () => {
  const manifest = () => manifestPath("parquet");

  it("without a module: FAILED_PRECONDITION when the data is opened, naming spec.model.layers.module and the manifest", async () => {
    for (const module of [undefined, ""]) {
      const error = await rejection(openDecoded(manifest(), module));
      expect([error.code, error.field]).toEqual([Code.FAILED_PRECONDITION, "spec.model.layers.module"]);
      expect(error.message).toContain(`${manifest()} says features.decoder "module"`);
      expect(error.message).toContain("the job has no module");
      expect(error.message).toContain("exporting decodeRecords");
    }
  });

  it("through openShardedRecords without a decoder: FAILED_PRECONDITION naming the manifest", async () => {
    const loaded = await readDatasetManifest(manifest());
    let error: unknown;
    try {
      openShardedRecords(loaded);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: Code.FAILED_PRECONDITION, field: "spec.model.layers.module" });
    expect((error as Error).message).toContain(manifest());
  });

  it("with a module that exports no decodeRecords: FAILED_PRECONDITION naming the module and the manifest", async () => {
    const error = await rejection(openDecoded(manifest(), modulePath("noDecoder")));
    expect([error.code, error.field]).toEqual([Code.FAILED_PRECONDITION, "spec.model.layers.module"]);
    expect(error.message).toContain(`the module ${modulePath("noDecoder")} exports no decodeRecords`);
    expect(error.message).toContain(manifest());
  });

  it("with a decodeRecords that is not a function: INVALID_ARGUMENT when the module is loaded", async () => {
    const error = await rejection(openDecoded(manifest(), modulePath("notAFunction")));
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "spec.model.layers.module"]);
    expect(error.message).toContain("exports decodeRecords, but not as a function");
  });

  it("with a module that does not exist: NOT_FOUND naming it", async () => {
    const error = await rejection(openDecoded(manifest(), join(dir, "missing.mjs")));
    expect([error.code, error.field]).toEqual([Code.NOT_FOUND, "spec.model.layers.module"]);
  });

  it.each([
    ["shortByOne", "returned 7999 values"],
    ["nan", "returned NaN at value 167 (record 2)"],
    ["throws", "threw no pixel column named image"],
  ] as const)(
    "with the decoder %s: the batch fails naming the module, decodeRecords, the file, the block and what was expected",
    async (name, problem) => {
      const data = await openDecoded(manifest(), modulePath(name));
      const error = await rejection(data.train.batch([1001, 1002]));
      expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "spec.model.layers.module"]);
      expect(error.message).toContain(`spec.model.layers.module: ${modulePath(name)}: decodeRecords ${problem}`);
      expect(error.message).toContain(`${join(dir, "parquet", "train-00001.parquet")}: block 0 (100 records)`);
      expect(error.message).toContain("expected 8000 finite numbers: 100 records x 80 features (features.shape [80] in");
      // A failed block is not cached: it fails again, rather than giving an empty block.
      expect((await rejection(data.train.batch([1001]))).message).toContain(problem);
    },
  );

  it("paired with a scaled evaluation set: refused at open, naming spec.dataset.evalManifest", async () => {
    const error = await rejection(openDecoded(manifest(), decoderModule, manifestPath("scaled")));
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "spec.dataset.evalManifest"]);
    expect(error.message).toContain("features of shape 64 (training: 80)");
  });

  it("a scaled training set with a decoded evaluation set of the same shape: refused, naming both mappings", async () => {
    const error = await rejection(openDecoded(manifestPath("scaled"), decoderModule, manifestPath("decoded64")));
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "spec.dataset.evalManifest"]);
    expect(error.message).toContain(
      `features decoded by the job's module (features.decoder "module") (training: scaled by ${1 / 16}, offset 0)`,
    );
  });

  it("a scaled manifest ignores the module: its features are value * scale", async () => {
    const data = await openDecoded(manifestPath("scaled"), modulePath("shortByOne"));
    expect((await data.train.batch([7])).x).toEqual(Float32Array.from(rows[7]!.slice(0, 64).map((p) => p * (1 / 16))));
  });
});

describe("trainfleet dataset convert with decoder module", () => {
  const input = () => digitsCsvPath();

  it("writes the same bytes every time", async () => {
    const once = await convertDataset({ ...convertOptions("arrow", "again"), input: await input() });
    const twice = await convertDataset({ ...convertOptions("arrow", "again"), input: await input() });
    const first = await readDatasetManifest(manifestPath("arrow"));
    expect([once.train.digest, twice.train.digest]).toEqual([first.digest, first.digest]);
  });

  it.each([
    [{ shape: undefined }, "--shape", "goes with --decoder module: give the shape decodeRecords makes of a record"],
    [{ scale: 1 / 16 }, "--scale", "the decoder does its own scaling"],
    [{ offset: 0 }, "--offset", "the decoder does its own scaling"],
    [{ shape: [0, 80] }, "--shape", "positive integer dimensions"],
  ] as [Partial<ConvertOptions>, string, string][])("refuses %j, naming %s", async (more, field, text) => {
    const error = await rejection(convertDataset({ ...convertOptions("parquet", "refused", more), input: await input() }));
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, field]);
    expect(error.message).toContain(text);
  });

  it("without a decoder, still refuses a shape the columns do not fill, pointing at --decoder", async () => {
    const error = await rejection(
      convertDataset({ ...convertOptions("parquet", "refused", { decoder: undefined }), input: await input() }),
    );
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "--shape"]);
    expect(error.message).toContain("give dimensions whose product is 64 (or --decoder module");
  });
});

import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { create } from "@bufbuild/protobuf";
import type { DatasetManifest } from "@trainfleet/artifacts";
import { Code, DatasetSpecSchema } from "@trainfleet/proto";
import { rejection } from "@trainfleet/testing/rejection";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConvertOptions } from "../src/dataset/convert/convert-dataset.js";
import { convertDataset } from "../src/dataset/convert/convert-dataset.js";
import { splitRecords } from "../src/dataset/convert/split-records.js";
import { defaultSklearnDataDirs, locateSklearnFile } from "../src/dataset/sklearn-data.js";
import { openTrainingData } from "../src/dataset/training-data.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tf-convert-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function csv(name: string, text: string, gzip = false): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, gzip ? gzipSync(text) : text);
  return path;
}

function options(input: string, out: string, more: Partial<ConvertOptions> = {}): ConvertOptions {
  return { input, out: join(dir, out), fileFormat: "parquet", recordsPerFile: 100, recordsPerBlock: 2, ...more };
}

async function manifestAt(path: string): Promise<DatasetManifest> {
  return JSON.parse(await readFile(path, "utf8")) as DatasetManifest;
}

async function readAll(manifest: string, count: number) {
  const data = await openTrainingData(create(DatasetSpecSchema, { manifest }), { dataDirs: [] });
  const batch = await data.train.batch(Array.from({ length: count }, (_, i) => i));
  await data.close();
  return batch;
}

describe("convertDataset from CSV", () => {
  it("takes a first line of names as column names, stores the smallest exact types, and maps features as asked", async () => {
    const input = await csv("named.csv.gz", "width,height,score,kind\n1,2,0.5,1\n3,4,-1.25,0\n300,6,2,2\n", true);
    const lines: string[] = [];
    const result = await convertDataset(
      options(input, "named", {
        labelColumns: ["kind"],
        featureColumns: ["score", "width"],
        scale: 2,
        offset: 1,
        report: (l) => lines.push(l),
      }),
    );
    const manifest = await manifestAt(result.train.path);
    expect(manifest.schema).toEqual([
      { name: "width", type: "int32" },
      { name: "score", type: "float64" },
      { name: "kind", type: "uint8" },
    ]);
    expect(manifest.features).toEqual({ columns: ["score", "width"], dtype: "float32", shape: [2], scale: 2, offset: 1 });
    expect(manifest.label).toEqual({ kind: "classes", column: "kind", classes: 3 });
    expect(lines[0]).toContain("column names");
    const batch = await readAll(result.train.path, 3);
    expect(Array.from(batch.x)).toEqual([2, 3, -1.5, 7, 5, 601]);
    expect(Array.from(batch.labels)).toEqual([1, 0, 2]);
  });

  it("writes regression targets from several label columns", async () => {
    const input = await csv("regression.csv", "x,y1,y2\n1,0.25,10\n2,0.5,20\n3,0.75,30\n");
    const result = await convertDataset(
      options(input, "regression", { regression: true, labelColumns: ["y1", "-1"], fileFormat: "arrow" }),
    );
    expect((await manifestAt(result.train.path)).label).toEqual({ kind: "regression", columns: ["y1", "y2"], size: 2 });
    const batch = await readAll(result.train.path, 3);
    expect(Array.from(batch.targets!)).toEqual([0.25, 10, 0.5, 20, 0.75, 30]);
    expect(batch.labels.length).toBe(0);
  });

  it("skips scikit-learn's header line (the real wine data) and splits off an exact, seeded evaluation set", async () => {
    const wine = await locateSklearnFile(
      "wine_data.csv",
      defaultSklearnDataDirs({
        dataDir: process.env.TRAINFLEET_SKLEARN_DATA_DIR,
        cacheHome: process.env.XDG_CACHE_HOME,
        home: process.env.HOME,
      }),
    );
    const lines: string[] = [];
    const run = (out: string, seed: number) =>
      convertDataset(
        options(wine, out, {
          evalFraction: 0.25,
          seed,
          shuffle: true,
          recordsPerFile: 50,
          recordsPerBlock: 16,
          report: (l) => lines.push(l),
        }),
      );
    const result = await run("wine", 1);
    expect(lines[0]).toContain("scikit-learn header");
    expect([result.train.records, result.evaluation?.records]).toEqual([133, 45]);
    expect(result.train.files).toBe(3);
    const manifest = await manifestAt(result.train.path);
    expect(manifest.label).toEqual({ kind: "classes", column: "c13", classes: 3 });
    expect(manifest.features.shape).toEqual([13]);
    // Every row lands in exactly one split.
    const rows = (await readFile(wine, "utf8"))
      .trim()
      .split("\n")
      .slice(1)
      .map((line) => line.split(",").map(Number));
    const train = await readAll(result.train.path, 133);
    const evaluation = await readAll(result.evaluation!.path, 45);
    const key = (x: Float32Array, i: number, label: number) => `${Array.from(x.subarray(i * 13, (i + 1) * 13)).join()}|${label}`;
    const written = [
      ...Array.from({ length: 133 }, (_, i) => key(train.x, i, train.labels[i]!)),
      ...Array.from({ length: 45 }, (_, i) => key(evaluation.x, i, evaluation.labels[i]!)),
    ].sort();
    expect(written).toEqual(rows.map((row) => key(Float32Array.from(row.slice(0, 13)), 0, row[13]!)).sort());
    // The seed decides: the same seed, the same digests; another seed, another split.
    expect((await run("wine-again", 1)).evaluation?.digest).toBe(result.evaluation?.digest);
    expect((await run("wine-other", 2)).evaluation?.digest).not.toBe(result.evaluation?.digest);
  });

  const refusals: [string, string, Partial<ConvertOptions>, string, string][] = [
    ["a shape that does not fit", "1,2,0\n3,4,1\n", { shape: [3] }, "--shape", "product is 2"],
    ["too few classes", "1,2,0\n3,4,5\n", { classes: 3 }, "--classes", "label 5"],
    ["a fractional class label", "1,2,0.5\n3,4,1\n", {}, "--label-column", "non-integer"],
    ["an unknown label column", "1,2,0\n3,4,1\n", { labelColumns: ["price"] }, "--label-column", '"price"'],
    ["a label that is also a feature", "1,2,0\n3,4,1\n", { featureColumns: ["0", "2"] }, "--feature-columns", "also the label"],
    ["an evaluation fraction of 1", "1,2,0\n3,4,1\n", { evalFraction: 1 }, "--eval-fraction", "between 0 and 1"],
  ];
  for (const [name, text, more, field, words] of refusals) {
    it(`refuses ${name}, naming ${field}, and writes nothing`, async () => {
      const out = `refused-${field.slice(2)}-${name.length}`;
      const error = await rejection(convertDataset(options(await csv(`${out}.csv`, text), out, more)));
      expect(error.code).toBe(Code.INVALID_ARGUMENT);
      expect(error.field).toBe(field);
      expect(error.message).toContain(words);
      await expect(readFile(join(dir, out, "dataset.json"))).rejects.toThrow();
    });
  }

  it("names the line of a field that is not a number, and of a row of the wrong length", async () => {
    const text = await csv("text.csv", "a,b,c\n1,2,0\n1,two,1\n");
    expect((await rejection(convertDataset(options(text, "text")))).message).toContain(`${text}:3: field 2 ("two") is not a number`);
    const ragged = await csv("ragged.csv", "1,2,0\n1,2\n");
    expect((await rejection(convertDataset(options(ragged, "ragged")))).message).toContain(
      `${ragged}:2: has 2 fields, but the file's rows have 3`,
    );
  });
});

describe("splitRecords", () => {
  it("moves an exact, seeded share of the records to evaluation, each side in order", () => {
    const { train, evaluation } = splitRecords(10, 0.3, 4);
    expect(evaluation.length).toBe(3);
    expect([...train, ...evaluation].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(Array.from(evaluation)).toEqual([...evaluation].sort((a, b) => a - b));
    expect(splitRecords(10, 0.3, 4)).toEqual({ train, evaluation });
  });
});

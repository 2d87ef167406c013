import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatasetManifest } from "../src/dataset-manifest.js";
import { parseDatasetManifest, readDatasetManifest } from "../src/dataset-manifest.js";
import { sha256Hex } from "../src/digest.js";

const H = (c: string) => c.repeat(64);

/** Two files of two and one blocks; 8x8 uint8 image column, a class label. */
function valid(): DatasetManifest {
  return {
    format: "trainfleet.dataset/v1",
    fileFormat: "parquet",
    records: 30,
    schema: [
      { name: "image", type: "uint8", length: 64 },
      { name: "label", type: "int32" },
    ],
    features: { columns: ["image"], dtype: "float32", shape: [8, 8, 1], scale: 1 / 16, offset: 0 },
    label: { kind: "classes", column: "label", classes: 10 },
    files: [
      {
        path: "train-00000.parquet",
        records: 20,
        bytes: 1000,
        sha256: H("a"),
        footer: { offset: 900, length: 100, sha256: H("b") },
        blocks: [
          { records: 10, offset: 4, length: 400, sha256: H("c") },
          { records: 10, offset: 404, length: 400, sha256: H("d") },
        ],
      },
      {
        path: "train-00001.parquet",
        records: 10,
        bytes: 500,
        sha256: H("e"),
        footer: { offset: 404, length: 96, sha256: H("f") },
        blocks: [{ records: 10, offset: 4, length: 400, sha256: H("0") }],
      },
    ],
  };
}

const bytesOf = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

const MISSING = Symbol("missing");

/** The valid manifest with the field at `path` (e.g. "files[0].blocks[1].records") set to `value`, or removed. */
function changed(path: string, value: unknown): unknown {
  const manifest = JSON.parse(JSON.stringify(valid())) as Record<string, unknown>;
  const keys = path.split(/\.|\[(\d+)\]/).filter((key) => key !== undefined && key !== "");
  const last = keys.pop()!;
  const parent = keys.reduce<Record<string, unknown>>((node, key) => node[key] as Record<string, unknown>, manifest);
  if (value === MISSING) delete parent[last];
  else parent[last] = value;
  return manifest;
}

function parseError(manifest: unknown): TrainfleetError {
  try {
    parseDatasetManifest(bytesOf(manifest), "/data/dataset.json");
  } catch (error) {
    expect(error).toBeInstanceOf(TrainfleetError);
    return error as TrainfleetError;
  }
  throw new Error("expected the manifest to be refused");
}

describe("parseDatasetManifest", () => {
  it("accepts a valid manifest and keeps every field", () => {
    expect(parseDatasetManifest(bytesOf(valid()), "/data/dataset.json")).toEqual(valid());
  });

  it("accepts regression labels whose size is the label columns' width", () => {
    const manifest = valid();
    manifest.schema.push({ name: "y", type: "float64", length: 2 }, { name: "z", type: "float32" });
    manifest.label = { kind: "regression", columns: ["y", "z"], size: 3 };
    expect(parseDatasetManifest(bytesOf(manifest), "m.json").label).toEqual({ kind: "regression", columns: ["y", "z"], size: 3 });
  });

  // [what is wrong, the field changed, its new value, the JSON path the error names, words of the problem or fix]
  const cases: [string, string, unknown, string, string][] = [
    ["an unknown format", "format", "other/v9", "format", "trainfleet.dataset/v1"],
    ["a missing fileFormat", "fileFormat", MISSING, "fileFormat", "the field is missing"],
    ["an unknown fileFormat", "fileFormat", "csv", "fileFormat", '"parquet", "arrow"'],
    ["total records that lie", "records", 31, "records", "the files hold 30"],
    ["records as a string", "records", "30", "records", 'string "30"'],
    ["file records that lie", "files[0].records", 21, "files[0].records", "its blocks hold 20"],
    ["a block without records", "files[0].blocks[1].records", MISSING, "files[0].blocks[1].records", "the field is missing"],
    ["a negative block offset", "files[1].blocks[0].offset", -4, "files[1].blocks[0].offset", "at least 0"],
    ["overlapping blocks", "files[0].blocks[1].offset", 300, "files[0].blocks[1].offset", "overlaps"],
    ["a block inside the footer", "files[0].blocks[1].length", 600, "files[0].blocks", "after the footer starts"],
    ["a footer that is not the tail", "files[0].footer.length", 50, "files[0].footer", "the file's tail"],
    ["a bad sha256", "files[0].blocks[0].sha256", "ABC", "files[0].blocks[0].sha256", "64 lower-case hex"],
    ["no blocks", "files[1].blocks", [], "files[1].blocks", "is empty"],
    ["no files", "files", [], "files", "is empty"],
    ["files as an object", "files", {}, "files", "expected an array, found an object"],
    ["an absolute path", "files[0].path", "/etc/passwd", "files[0].path", "relative to the manifest"],
    ["a path out of the folder", "files[0].path", "../x.parquet", "files[0].path", "no .."],
    ["a URL path", "files[0].path", "s3://b/x.parquet", "files[0].path", "no URL"],
    ["a file listed twice", "files[1].path", "train-00000.parquet", "files[1].path", "listed twice"],
    ["an unknown column type", "schema[0].type", "string", "schema[0].type", '"uint8"'],
    ["a zero vector length", "schema[0].length", 0, "schema[0].length", "at least 1"],
    ["a duplicate column", "schema[1].name", "image", "schema[1].name", "listed twice"],
    ["a feature column not in the schema", "features.columns", ["pixels"], "features.columns[0]", '"pixels" is not a column'],
    ["a shape of the wrong size", "features.shape", [8, 8, 3], "features.shape", "product is 64"],
    ["a zero dimension", "features.shape", [0, 8], "features.shape[0]", "at least 1"],
    ["a float64 dtype", "features.dtype", "float64", "features.dtype", "float32"],
    ["a missing scale", "features.scale", MISSING, "features.scale", "the field is missing"],
    ["an offset that is not a number", "features.offset", "Infinity", "features.offset", "finite number"],
    ["an unknown label kind", "label.kind", "ranking", "label.kind", '"classes", "regression"'],
    ["a label that is a feature", "label.column", "image", "label.column", "also a feature column"],
    ["a float label for classes", "schema[1].type", "float32", "label.column", "one integer per record"],
    ["zero classes", "label.classes", 0, "label.classes", "at least 1"],
    ["a regression size that lies", "label", { kind: "regression", columns: ["label"], size: 2 }, "label.size", "hold 1 values per record"],
  ];
  for (const [name, path, value, field, text] of cases) {
    it(`refuses ${name}, naming ${field}`, () => {
      const error = parseError(changed(path, value));
      expect(error.code).toBe(Code.INVALID_ARGUMENT);
      expect(error.field).toBe(field);
      expect(error.message).toContain(`/data/dataset.json: ${field}: `);
      expect(error.message).toContain(text);
    });
  }

  it("refuses bytes that are not JSON, naming the file", () => {
    const error = (() => {
      try {
        parseDatasetManifest(new TextEncoder().encode("{ not json"), "/data/dataset.json");
      } catch (e) {
        return e as TrainfleetError;
      }
      throw new Error("expected a throw");
    })();
    expect(error.code).toBe(Code.INVALID_ARGUMENT);
    expect(error.message).toContain("/data/dataset.json: not a JSON dataset manifest");
  });
});

describe("readDatasetManifest", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tf-manifest-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("returns the manifest with the sha256 of its bytes, and refuses other bytes than the sha256 given", async () => {
    const path = join(dir, "dataset.json");
    const bytes = bytesOf(valid());
    await writeFile(path, bytes);
    const loaded = await readDatasetManifest(path, { sha256: sha256Hex(bytes).toUpperCase() });
    expect(loaded).toEqual({ manifest: valid(), digest: sha256Hex(bytes), uri: path, safeUri: path });
    const error = await readDatasetManifest(path, { sha256: H("9") }).then(
      () => undefined,
      (e: unknown) => e as TrainfleetError,
    );
    expect(error?.code).toBe(Code.DATA_LOSS);
    expect(error?.message).toContain(path);
    expect(error?.message).toContain(sha256Hex(bytes));
  });

  it("names a missing manifest", async () => {
    const path = join(dir, "absent.json");
    const error = await readDatasetManifest(path).then(
      () => undefined,
      (e: unknown) => e as TrainfleetError,
    );
    expect(error?.code).toBe(Code.NOT_FOUND);
    expect(error?.message).toContain(path);
  });
});

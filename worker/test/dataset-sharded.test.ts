import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import type { DatasetManifest } from "@trainfleet/artifacts";
import { sha256Hex } from "@trainfleet/artifacts";
import { Code, DatasetFactsSchema, DatasetSpecSchema } from "@trainfleet/proto";
import { digitsCsvPath } from "@trainfleet/testing/fixtures/digits-dataset";
import { startHttpFileServer } from "@trainfleet/testing/fixtures/http-file-server";
import { startS3Server } from "@trainfleet/testing/fixtures/s3-server";
import { rejection } from "@trainfleet/testing/rejection";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertDataset } from "../src/dataset/convert/convert-dataset.js";
import { datasetFacts } from "../src/dataset/dataset-facts.js";
import type { TrainingData } from "../src/dataset/record-set.js";
import { openTrainingData } from "../src/dataset/training-data.js";
import { digitsRows } from "./dataset-fixtures.js";

const formats = ["parquet", "arrow"] as const;
let dir: string;
let rows: number[][];
const open: TrainingData[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tf-sharded-"));
  rows = await digitsRows();
  for (const fileFormat of formats) {
    await convertDataset({
      input: await digitsCsvPath(),
      out: join(dir, fileFormat),
      fileFormat,
      recordsPerFile: 1000,
      recordsPerBlock: 100,
      scale: 1 / 16,
      shape: [8, 8, 1],
    });
  }
});
afterAll(async () => {
  for (const data of open) await data.close();
  await rm(dir, { recursive: true, force: true });
});

async function openManifest(path: string, cacheBytes?: number): Promise<TrainingData> {
  const data = await openTrainingData(create(DatasetSpecSchema, { manifest: path }), { dataDirs: [], cacheBytes });
  open.push(data);
  return data;
}

async function manifestOf(path: string): Promise<DatasetManifest> {
  return JSON.parse(await readFile(path, "utf8")) as DatasetManifest;
}

/** A copy of a converted dataset that a test may damage. */
async function copyOf(fileFormat: string, name: string): Promise<string> {
  const copy = join(dir, `${fileFormat}-${name}`);
  await cp(join(dir, fileFormat), copy, { recursive: true });
  return copy;
}

/** Seeded index sets, duplicates and both files included. */
function indexSets(): number[][] {
  let state = 12345;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % 1797;
  };
  return [Array.from({ length: 64 }, next), Array.from({ length: 200 }, next), [1796, 0, 999, 1000, 999, 1796]];
}

describe.each(formats)("a digits dataset converted to %s", (fileFormat) => {
  const manifestPath = () => join(dir, fileFormat, "dataset.json");

  it("returns exactly the CSV's rows (scaled as the manifest says) and labels for random index sets", async () => {
    const data = await openManifest(manifestPath());
    expect([data.train.count, data.eval.count]).toEqual([1797, 1797]);
    for (const indices of indexSets()) {
      const batch = await data.train.batch(indices);
      expect(batch.count).toBe(indices.length);
      const x = new Float32Array(indices.length * 64);
      indices.forEach((index, i) =>
        x.set(
          rows[index]!.slice(0, 64).map((value) => value * (1 / 16)),
          i * 64,
        ),
      );
      expect(batch.x).toEqual(x);
      expect(Array.from(batch.labels)).toEqual(indices.map((index) => rows[index]![64]));
      expect(batch.targets).toBeUndefined();
    }
  });

  it("reads only the footer and the block a small slice needs, and a cached block not again", async () => {
    const manifest = await manifestOf(manifestPath());
    const [first, second] = manifest.files as [DatasetManifest["files"][0], DatasetManifest["files"][0]];
    const data = await openManifest(manifestPath());
    await data.train.batch([5, 7, 99]);
    expect(data.train.bytesRead).toBe(first.footer.length + first.blocks[0]!.length);
    expect(data.train.bytesRead).toBeLessThan(first.bytes / 3);
    await data.train.batch([1000 + 350]);
    const both = first.footer.length + first.blocks[0]!.length + second.footer.length + second.blocks[3]!.length;
    expect(data.train.bytesRead).toBe(both);
    await data.train.batch([99, 1350, 0]);
    expect(data.train.bytesRead).toBe(both);
  });

  it("reads a prefetched block once when the batch then asks for it", async () => {
    const manifest = await manifestOf(manifestPath());
    const file = manifest.files[1]!;
    const data = await openManifest(manifestPath());
    data.train.prefetch([1000 + 720]);
    const batch = await data.train.batch([1000 + 720]);
    expect(Array.from(batch.labels)).toEqual([rows[1720]![64]]);
    expect(data.train.bytesRead).toBe(file.footer.length + file.blocks[7]!.length);
  });

  it("stops waiting when its signal aborts, and refuses indices outside the dataset", async () => {
    const data = await openManifest(manifestPath());
    const controller = new AbortController();
    controller.abort();
    expect((await rejection(data.train.batch([1, 2], controller.signal))).code).toBe(Code.CANCELLED);
    data.train.prefetch([1797]);
    const error = await rejection(data.train.batch([3, 1797]));
    expect(error.code).toBe(Code.INVALID_ARGUMENT);
    expect(error.message).toContain("index 1797 (position 1) is outside the split's 1797 samples");
  });

  it("still returns the right rows when the cache holds less than a block", async () => {
    const data = await openManifest(manifestPath(), 1);
    const indices = indexSets()[0]!;
    const once = await data.train.batch(indices);
    const read = data.train.bytesRead;
    const twice = await data.train.batch(indices);
    expect(twice).toEqual(once);
    expect(data.train.bytesRead).toBeGreaterThan(read);
  });

  it("refuses a flipped byte in a block with DATA_LOSS naming the file and block; other blocks still read", async () => {
    const copy = await copyOf(fileFormat, "flipped");
    const manifest = await manifestOf(join(copy, "dataset.json"));
    const file = manifest.files[1]!;
    const shard = join(copy, file.path);
    const bytes = await readFile(shard);
    const at = file.blocks[2]!.offset + 17;
    bytes[at] = bytes[at]! ^ 0x40;
    await writeFile(shard, bytes);
    const data = await openManifest(join(copy, "dataset.json"));
    data.train.prefetch([1000 + 250]);
    const error = await rejection(data.train.batch([3, 1000 + 250]));
    expect(error.code).toBe(Code.DATA_LOSS);
    expect(error.message).toContain(shard);
    expect(error.message).toContain("block 2 ");
    expect(error.message).toContain(file.blocks[2]!.sha256);
    const fine = await data.train.batch([1000 + 150, 3]);
    expect(Array.from(fine.labels)).toEqual([rows[1150]![64], rows[3]![64]]);
  });

  it("names a missing shard file; the other file still reads", async () => {
    const copy = await copyOf(fileFormat, "missing");
    const manifest = await manifestOf(join(copy, "dataset.json"));
    await rm(join(copy, manifest.files[1]!.path));
    const data = await openManifest(join(copy, "dataset.json"));
    const error = await rejection(data.train.batch([1500]));
    expect(error.code).toBe(Code.NOT_FOUND);
    expect(error.message).toContain(join(copy, manifest.files[1]!.path));
    expect(error.message).toContain("files[1]");
    expect((await data.train.batch([10])).labels[0]).toBe(rows[10]![64]);
  });

  it("refuses block counts that disagree with the file itself, naming the file", async () => {
    const copy = await copyOf(fileFormat, "lying");
    const path = join(copy, "dataset.json");
    const manifest = await manifestOf(path);
    // Sums stay right, so only reading the file can tell.
    manifest.files[0]!.blocks[0]!.records = 99;
    manifest.files[0]!.blocks[1]!.records = 101;
    await writeFile(path, JSON.stringify(manifest));
    const data = await openManifest(path);
    const error = await rejection(data.train.batch([0]));
    expect(error.code).toBe(Code.DATA_LOSS);
    expect(error.message).toContain(join(copy, manifest.files[0]!.path));
    expect(error.message).toContain("holds 100 records, but the manifest says 99");
  });

  it("refuses a schema that does not match the file's, naming the file and column", async () => {
    const copy = await copyOf(fileFormat, "schema");
    const path = join(copy, "dataset.json");
    const manifest = await manifestOf(path);
    manifest.schema[5] = { name: "c5", type: "float64" };
    await writeFile(path, JSON.stringify(manifest));
    const data = await openManifest(path);
    const error = await rejection(data.train.batch([1]));
    expect(error.code).toBe(Code.DATA_LOSS);
    expect(error.message).toContain(join(copy, manifest.files[0]!.path));
    expect(error.message).toMatch(/column "c5" is .*, but the manifest says (float64|Float64)/);
  });

  it("writes the same bytes when converted again", async () => {
    const again = join(dir, `${fileFormat}-again`);
    const result = await convertDataset({
      input: await digitsCsvPath(),
      out: again,
      fileFormat,
      recordsPerFile: 1000,
      recordsPerBlock: 100,
      scale: 1 / 16,
      shape: [8, 8, 1],
    });
    const original = await readFile(manifestPath());
    expect(result.train.digest).toBe(sha256Hex(original));
    expect(await readFile(join(again, "dataset.json"))).toEqual(original);
  });

  it("gives the job its facts from the manifest alone, and refuses a manifest other than the one pinned", async () => {
    const digest = sha256Hex(await readFile(manifestPath()));
    const facts = await datasetFacts(create(DatasetSpecSchema, { manifest: manifestPath() }));
    expect(facts).toEqual({
      digest,
      evalDigest: "",
      trainRecords: 1797,
      evalRecords: 1797,
      featureShape: [8, 8, 1],
      classes: 10,
      labelSize: 0,
      recordsPerBlock: 100,
      decodedByModule: false,
    });
    const pinned = create(DatasetSpecSchema, {
      manifest: manifestPath(),
      facts: create(DatasetFactsSchema, { ...facts, digest: "0".repeat(64) }),
    });
    const error = await rejection(openTrainingData(pinned, { dataDirs: [] }));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.field).toBe("spec.dataset.manifest");
    expect(error.message).toContain(digest);
    const wrongSha = create(DatasetSpecSchema, { manifest: manifestPath(), sha256: "1".repeat(64) });
    expect((await rejection(datasetFacts(wrongSha))).code).toBe(Code.DATA_LOSS);
  });
});

describe("a sharded dataset over HTTP", () => {
  it("reads the manifest, then only range requests for the footers and blocks a batch needs", async () => {
    const server = await startHttpFileServer({ root: join(dir, "parquet") });
    try {
      const manifest = await manifestOf(join(dir, "parquet", "dataset.json"));
      const data = await openManifest(`${server.url}dataset.json`);
      const batch = await data.train.batch([42, 1000 + 750]);
      expect(Array.from(batch.labels)).toEqual([rows[42]![64], rows[1750]![64]]);
      const [first, second] = manifest.files as [DatasetManifest["files"][0], DatasetManifest["files"][0]];
      expect(data.train.bytesRead).toBe(first.footer.length + first.blocks[0]!.length + second.footer.length + second.blocks[7]!.length);
      const shardRequests = server.requests.filter((request) => request.path !== "/dataset.json");
      expect(shardRequests.filter((request) => request.method === "GET").every((request) => request.range !== undefined)).toBe(true);
      const ranges = shardRequests.filter((request) => request.method === "GET").map((request) => `${request.path} ${request.range}`);
      expect(ranges.sort()).toEqual(
        [
          [first, first.footer],
          [first, first.blocks[0]!],
          [second, second.footer],
          [second, second.blocks[7]!],
        ]
          .map(
            ([file, range]) =>
              `/${(file as typeof first).path} bytes=${(range as typeof first.footer).offset}-${(range as typeof first.footer).offset + (range as typeof first.footer).length - 1}`,
          )
          .sort(),
      );
    } finally {
      await server.close();
    }
  });

  it("names the shard's URL when its server is gone", async () => {
    const server = await startHttpFileServer({ root: join(dir, "parquet") });
    const manifest = await manifestOf(join(dir, "parquet", "dataset.json"));
    const data = await openTrainingData(create(DatasetSpecSchema, { manifest: `${server.url}dataset.json` }), {
      dataDirs: [],
      sources: { retries: 1, retryDelayMs: 0 },
    });
    open.push(data);
    await server.close();
    const error = await rejection(data.train.batch([5]));
    expect(error.code).toBe(Code.UNAVAILABLE);
    expect(error.message).toContain(`${server.url}${manifest.files[0]!.path}`);
  });

  it("carries the manifest URL's credentials to its shards, and never shows them", async () => {
    const server = await startHttpFileServer({ root: join(dir, "parquet"), basicAuth: { user: "reader", password: "s3cret-pass" } });
    const url = server.url.replace("http://", "http://reader:s3cret-pass@");
    const data = await openTrainingData(create(DatasetSpecSchema, { manifest: `${url}dataset.json` }), {
      dataDirs: [],
      sources: { retries: 0 },
    });
    open.push(data);
    expect(Array.from((await data.train.batch([7])).labels)).toEqual([rows[7]![64]]);
    expect(server.requests.every((request) => request.authorization !== undefined)).toBe(true);
    await server.close();
    const error = await rejection(data.train.batch([1500]));
    expect(error.message).toContain("train-00001.parquet");
    expect(error.message).not.toContain("s3cret-pass");
  });
});

describe("a sharded dataset in S3", () => {
  it("reads the blocks a batch needs from s3:// shards named relative to the manifest", async () => {
    const s3 = await startS3Server();
    try {
      for (const name of await readdir(join(dir, "arrow"))) await s3.put(`digits/${name}`, await readFile(join(dir, "arrow", name)));
      const data = await openTrainingData(create(DatasetSpecSchema, { manifest: s3.url("digits/dataset.json") }), {
        dataDirs: [],
        sources: { s3: { endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials } },
      });
      open.push(data);
      const indices = [1796, 3, 1200];
      const batch = await data.train.batch(indices);
      expect(Array.from(batch.labels)).toEqual(indices.map((index) => rows[index]![64]));
      const manifest = await manifestOf(join(dir, "arrow", "dataset.json"));
      const [first, second] = manifest.files as [DatasetManifest["files"][0], DatasetManifest["files"][0]];
      expect(data.train.bytesRead).toBe(
        first.footer.length + first.blocks[0]!.length + second.footer.length + second.blocks[7]!.length + second.blocks[2]!.length,
      );
    } finally {
      await s3.close();
    }
  });
});

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { DatasetSpecSchema } from "@trainfleet/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HostBatch } from "../src/compute/host-batch.js";
import { makeBatch } from "../src/compute/host-batch.js";
import { convertDataset } from "../src/dataset/convert/convert-dataset.js";
import type { ImageDataset } from "../src/dataset/fashion-mnist.js";
import { defaultDataDirs, loadFashionMnist, locateFashionMnist } from "../src/dataset/fashion-mnist.js";
import { openTrainingData } from "../src/dataset/training-data.js";

const dataDirs = defaultDataDirs({
  dataDir: process.env.TRAINFLEET_DATA_DIR,
  cacheHome: process.env.XDG_CACHE_HOME,
  home: process.env.HOME,
});
let fashion: ImageDataset;
let dir: string;

beforeAll(async () => {
  fashion = await loadFashionMnist(dataDirs);
  dir = await mkdtemp(join(tmpdir(), "tf-fashion-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function indices(count: number, length: number, seed: number): number[] {
  let state = seed;
  return Array.from({ length }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % count;
  });
}

/** Bit-for-bit: the same bytes, not merely equal numbers. */
function expectSameBits(actual: HostBatch, expected: HostBatch): void {
  expect(actual.count).toBe(expected.count);
  expect(
    Buffer.from(actual.x.buffer, actual.x.byteOffset, actual.x.byteLength).equals(
      Buffer.from(expected.x.buffer, expected.x.byteOffset, expected.x.byteLength),
    ),
  ).toBe(true);
  expect(actual.labels).toEqual(expected.labels);
}

describe("Fashion-MNIST through the RecordSet interface", () => {
  it("serves the built-in dataset with exactly makeBatch's bytes (train and test splits)", async () => {
    const data = await openTrainingData(create(DatasetSpecSchema, { name: "fashion-mnist" }), { dataDirs });
    expect([data.train.count, data.eval.count]).toEqual([60000, 10000]);
    const trainIndices = indices(60000, 256, 7);
    expectSameBits(await data.train.batch(trainIndices), makeBatch(fashion.train, trainIndices));
    const evalIndices = Array.from({ length: 100 }, (_, i) => 9900 + i);
    expectSameBits(await data.eval.batch(evalIndices), makeBatch(fashion.test, evalIndices));
    expect(data.train.bytesRead).toBe(0);
    await data.close();
  });

  for (const fileFormat of ["parquet", "arrow"] as const) {
    it(`converted from its IDX files to ${fileFormat}, gives exactly makeBatch's bytes`, async () => {
      const source = await locateFashionMnist(dataDirs);
      const out = join(dir, fileFormat);
      const result = await convertDataset({
        input: join(source, "t10k-images-idx3-ubyte.gz"),
        labels: join(source, "t10k-labels-idx1-ubyte.gz"),
        out,
        fileFormat,
        recordsPerFile: 4000,
        recordsPerBlock: 500,
      });
      expect(result.train.records).toBe(10000);
      const data = await openTrainingData(create(DatasetSpecSchema, { manifest: result.train.path }), { dataDirs: [] });
      for (const seed of [1, 2]) {
        const chosen = indices(10000, 128, seed);
        expectSameBits(await data.train.batch(chosen), makeBatch(fashion.test, chosen));
      }
      await data.close();
    });
  }
});

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultDataDirs, loadFashionMnist, SYSTEM_DATA_DIR } from "../src/dataset/fashion-mnist.js";
import { parseIdx } from "../src/dataset/idx.js";

/** Builds an IDX file of unsigned bytes; `payload` defaults to 0,1,2,... of the right length. */
function idx(dims: number[], payload?: Uint8Array, type = 0x08): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  const data = payload ?? Uint8Array.from({ length: count }, (_, i) => i % 256);
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out.set([0, 0, type, dims.length]);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

function caught(fn: () => unknown): TrainfleetError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TrainfleetError);
    return error as TrainfleetError;
  }
  throw new Error("expected a throw");
}

async function rejected(promise: Promise<unknown>): Promise<TrainfleetError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TrainfleetError);
  return error as TrainfleetError;
}

const FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];

describe("parseIdx", () => {
  it("parses raw and gzipped IDX", () => {
    const raw = idx([2, 3, 4]);
    for (const bytes of [raw, gzipSync(raw)]) {
      const { dims, data } = parseIdx(bytes, "x.idx");
      expect(dims).toEqual([2, 3, 4]);
      expect(Array.from(data)).toEqual(Array.from({ length: 24 }, (_, i) => i));
    }
  });

  const malformed: [string, Uint8Array][] = [
    ["too short", Uint8Array.of(0, 0, 8)],
    ["bad magic", Uint8Array.of(1, 0, 8, 1, 0, 0, 0, 0)],
    ["unsupported type", idx([2], undefined, 0x0d)],
    ["truncated header", Uint8Array.of(0, 0, 8, 3, 0, 0, 0, 1)],
    ["payload too short", idx([4, 4]).subarray(0, 20)],
    ["payload too long", Uint8Array.of(...idx([2]), 7)],
    ["corrupt gzip", gzipSync(idx([2, 2])).subarray(0, 12)],
  ];
  for (const [name, bytes] of malformed) {
    it(`rejects ${name} with DATA_LOSS naming the file`, () => {
      const error = caught(() => parseIdx(bytes, "/data/broken-idx1-ubyte.gz"));
      expect(error.code).toBe(Code.DATA_LOSS);
      expect(error.message).toContain("/data/broken-idx1-ubyte.gz");
      expect(error.message).toContain("npm run fetch-data");
    });
  }

  it("refuses gzip that inflates past the bound with RESOURCE_EXHAUSTED naming the file, without inflating it all", () => {
    // 64 MiB of zeros gzip to about 64 KiB: a small file that would take far more memory.
    const bomb = gzipSync(new Uint8Array(64 * 1024 * 1024));
    const error = caught(() => parseIdx(bomb, "/data/bomb-idx3-ubyte.gz", 1024 * 1024));
    expect(error.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(error.message).toBe(
      "/data/bomb-idx3-ubyte.gz: inflates to more than 1048576 bytes, the most trainfleet reads from one IDX file: give the data as Parquet or Arrow shards with a dataset.json instead (docs/own-model.md)",
    );
    // Within the bound, the same reader inflates it.
    expect(() => parseIdx(gzipSync(idx([2, 2])), "x.idx", 1024 * 1024)).not.toThrow();
  });
});

describe("defaultDataDirs", () => {
  it("uses an explicit dir alone, else the system dir then the cache dir", () => {
    expect(defaultDataDirs({ dataDir: "/d", cacheHome: "/c", home: "/h" })).toEqual(["/d"]);
    expect(defaultDataDirs({ cacheHome: "/c", home: "/h" })).toEqual([SYSTEM_DATA_DIR, "/c/trainfleet/fashion-mnist"]);
    expect(defaultDataDirs({ home: "/h" })).toEqual([SYSTEM_DATA_DIR, "/h/.cache/trainfleet/fashion-mnist"]);
    expect(defaultDataDirs({ dataDir: "", cacheHome: "", home: "/h" })).toEqual([SYSTEM_DATA_DIR, "/h/.cache/trainfleet/fashion-mnist"]);
  });
});

describe("loadFashionMnist", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tf-dataset-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("fails with FAILED_PRECONDITION naming the searched folders when a file is missing", async () => {
    const partial = join(dir, "partial");
    await mkdir(partial);
    for (const f of FILES.slice(0, 3)) await writeFile(join(partial, f), idx([1]));
    const error = await rejected(loadFashionMnist([partial, join(dir, "absent")]));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.message).toContain(partial);
    expect(error.message).toContain(join(dir, "absent"));
    expect(error.message).toContain("t10k-labels-idx1-ubyte.gz");
    expect(error.message).toContain("npm run fetch-data");
  });

  it("rejects wrong counts, mismatched labels and out-of-range labels with DATA_LOSS naming the file", async () => {
    const fake = join(dir, "fake");
    await mkdir(fake);
    // A valid test split and valid-shaped train images; each case then breaks one file.
    const images = idx([60000, 28, 28], new Uint8Array(60000 * 784));
    await writeFile(join(fake, FILES[2]!), idx([10000, 28, 28], new Uint8Array(10000 * 784)));
    await writeFile(join(fake, FILES[3]!), idx([10000], new Uint8Array(10000)));
    const cases: [Uint8Array, Uint8Array, string, string][] = [
      [idx([60000]), idx([2, 28, 28]), FILES[0]!, "expected 60000 images, found 2"],
      [idx([60000]), idx([3, 28, 27]), FILES[0]!, "found dimensions 3x28x27"],
      [idx([59999], new Uint8Array(59999)), images, FILES[1]!, "59999 labels"],
      [idx([60000], new Uint8Array(60000).fill(10)), images, FILES[1]!, "label 10 at index 0"],
    ];
    for (const [labels, trainImages, file, text] of cases) {
      await writeFile(join(fake, FILES[0]!), trainImages);
      await writeFile(join(fake, FILES[1]!), labels);
      const error = await rejected(loadFashionMnist([fake]));
      expect(error.code).toBe(Code.DATA_LOSS);
      expect(error.message).toContain(join(fake, file));
      expect(error.message).toContain(text);
    }
  });

  it("loads the real Fashion-MNIST (run `npm run fetch-data` first)", async () => {
    const dirs = defaultDataDirs({
      dataDir: process.env.TRAINFLEET_DATA_DIR,
      cacheHome: process.env.XDG_CACHE_HOME,
      home: process.env.HOME,
    });
    const data = await loadFashionMnist(dirs);
    expect(data.classes).toBe(10);
    expect([data.train.count, data.train.rows, data.train.cols]).toEqual([60000, 28, 28]);
    expect([data.test.count, data.test.rows, data.test.cols]).toEqual([10000, 28, 28]);
    expect(data.train.images.length).toBe(60000 * 784);
    expect(data.test.labels.length).toBe(10000);
    // Known values of the real files: first train image is an ankle boot (class 9).
    expect(data.train.labels[0]).toBe(9);
    expect(Array.from(data.test.labels.subarray(0, 5))).toEqual([9, 2, 1, 1, 6]);
    expect(data.train.images.subarray(0, 784).reduce((a, b) => a + b, 0)).toBe(76247);
  });
});

import type { DatasetFile } from "@trainfleet/artifacts";
import { describe, expect, it } from "vitest";
import { createBlockCache } from "../src/dataset/block-cache.js";
import { createRecordLocator } from "../src/dataset/record-locator.js";

function file(...records: number[]): DatasetFile {
  const sha256 = "0".repeat(64);
  return {
    path: "f",
    records: records.reduce((a, b) => a + b, 0),
    bytes: 1000,
    sha256,
    footer: { offset: 900, length: 100, sha256 },
    blocks: records.map((n, i) => ({ records: n, offset: i * 100, length: 100, sha256 })),
  };
}

describe("createRecordLocator", () => {
  it("maps global indices to (file, block) by prefix sums across files", () => {
    const locator = createRecordLocator([file(3, 2), file(4)]);
    expect(locator.count).toBe(9);
    expect(locator.blocks).toEqual([
      { file: 0, block: 0, start: 0, records: 3 },
      { file: 0, block: 1, start: 3, records: 2 },
      { file: 1, block: 0, start: 5, records: 4 },
    ]);
    expect([0, 2, 3, 4, 5, 8].map((index) => locator.blockOf(index))).toEqual([0, 0, 1, 1, 2, 2]);
  });
});

describe("createBlockCache", () => {
  function counting() {
    const loads: number[] = [];
    const load = (key: number) => () => {
      loads.push(key);
      return Promise.resolve(key);
    };
    return { loads, load };
  }

  it("shares a load in flight and keeps its result", async () => {
    const cache = createBlockCache<number>({ maxBytes: 100, sizeOf: () => 10 });
    const { loads, load } = counting();
    const [a, b] = await Promise.all([cache.get(1, load(1)), cache.get(1, load(1))]);
    expect([a, b, await cache.get(1, load(1))]).toEqual([1, 1, 1]);
    expect(loads).toEqual([1]);
    expect(cache.bytes).toBe(10);
  });

  it("evicts the least recently used block when over its budget", async () => {
    const cache = createBlockCache<number>({ maxBytes: 25, sizeOf: () => 10 });
    const { loads, load } = counting();
    await cache.get(1, load(1));
    await cache.get(2, load(2));
    await cache.get(1, load(1)); // 1 is now more recent than 2
    await cache.get(3, load(3));
    expect(cache.bytes).toBe(20);
    await cache.get(1, load(1));
    await cache.get(2, load(2));
    expect(loads).toEqual([1, 2, 3, 2]);
  });

  it("forgets a failed load, so the next request tries again", async () => {
    const cache = createBlockCache<number>({ maxBytes: 100, sizeOf: () => 10 });
    await expect(cache.get(1, () => Promise.reject(new Error("unreachable")))).rejects.toThrow("unreachable");
    expect(await cache.get(1, () => Promise.resolve(7))).toBe(7);
  });
});

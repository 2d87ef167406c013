import { describe, expect, it } from "vitest";
import { epochPermutation } from "../src/ledger.js";
import { SampleCursor } from "../src/sample-cursor.js";

describe("SampleCursor", () => {
  it("numbers steps, covers every sample once per epoch, and moves to the next epoch's permutation", () => {
    const cursor = new SampleCursor(9, 10, 2);
    const epochs: number[][] = [[], []];
    const shapes: Array<[number, number, number]> = [];
    for (let i = 0; i < 6; i++) {
      const planned = cursor.next(2);
      expect(planned.step).toBe(i);
      shapes.push([planned.epoch, planned.globalBatchSize, planned.sampleIndices.length]);
      for (const slice of planned.sampleIndices) epochs[planned.epoch]!.push(...slice);
    }
    expect(shapes).toEqual([[0, 4, 2], [0, 4, 2], [0, 2, 2], [1, 4, 2], [1, 4, 2], [1, 2, 2]]);
    expect(epochs[0]).toEqual(Array.from(epochPermutation(9, 0, 10)));
    expect(epochs[1]).toEqual(Array.from(epochPermutation(9, 1, 10)));
    expect(epochs[1]).not.toEqual(epochs[0]);
  });
});

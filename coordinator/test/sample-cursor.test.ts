import { describe, expect, it } from "vitest";
import { epochPermutation } from "../src/steps/ledger.js";
import { SampleCursor } from "../src/steps/sample-cursor.js";

describe("SampleCursor", () => {
  it("numbers steps, covers every sample once per epoch, and moves to the next epoch's permutation", () => {
    const cursor = new SampleCursor(9, 10, 4);
    const epochs: number[][] = [[], []];
    const shapes: Array<[number, number, number]> = [];
    for (let i = 0; i < 6; i++) {
      const planned = cursor.next(2);
      expect(planned.step).toBe(i);
      shapes.push([planned.epoch, planned.globalBatchSize, planned.sampleIndices.length]);
      for (const slice of planned.sampleIndices) epochs[planned.epoch]!.push(...slice);
    }
    expect(shapes).toEqual([
      [0, 4, 2],
      [0, 4, 2],
      [0, 2, 2],
      [1, 4, 2],
      [1, 4, 2],
      [1, 2, 2],
    ]);
    expect(epochs[0]).toEqual(Array.from(epochPermutation(9, 0, 10)));
    expect(epochs[1]).toEqual(Array.from(epochPermutation(9, 1, 10)));
    expect(epochs[1]).not.toEqual(epochs[0]);
  });

  it("seeks back to a step and hands out the same samples again, split over another number of ranks", () => {
    const cursor = new SampleCursor(3, 10, 4);
    const first = [cursor.next(2), cursor.next(2), cursor.next(2), cursor.next(2)];
    cursor.seek(1);
    expect(cursor.position()).toEqual({ step: 1, epoch: 0, offset: 4 });
    const again = [cursor.next(3), cursor.next(3), cursor.next(3)];
    expect(again.map((p) => [p.step, p.epoch, p.sampleIndices.length])).toEqual([
      [1, 0, 3],
      [2, 0, 3],
      [3, 1, 3],
    ]);
    again.forEach((planned, i) => {
      const before = first[i + 1]!;
      expect(planned.globalBatchSize).toBe(before.globalBatchSize);
      expect(planned.sampleIndices.flatMap((s) => [...s])).toEqual(before.sampleIndices.flatMap((s) => [...s]));
    });
  });
});

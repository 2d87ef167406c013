import { describe, expect, it } from "vitest";
import type { LedgerPosition } from "../src/steps/ledger.js";
import { epochPermutation, planStep, stepsPerEpoch } from "../src/steps/ledger.js";

describe("the sample ledger", () => {
  it("gives each epoch a seeded permutation: the same for the same (seed, epoch), different otherwise", () => {
    const a = epochPermutation(1, 0, 1000);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(epochPermutation(1, 0, 1000)).toEqual(a);
    expect(epochPermutation(1, 1, 1000)).not.toEqual(a);
    expect(epochPermutation(2, 0, 1000)).not.toEqual(a);
  });

  it("uses every sample of an epoch exactly once, including the short last batch", () => {
    const size = 103;
    const permutation = epochPermutation(5, 0, size);
    let position: LedgerPosition = { epoch: 0, offset: 0 };
    const seen: number[] = [];
    const batches: number[][] = [];
    for (let step = 0; step < stepsPerEpoch(size, 3 * 10); step++) {
      const planned = planStep(position, permutation, 3, 30);
      batches.push(planned.sampleIndices.map((s) => s.length));
      for (const slice of planned.sampleIndices) seen.push(...slice);
      expect(planned.globalBatchSize).toBe(planned.sampleIndices.reduce((n, s) => n + s.length, 0));
      position = planned.next;
    }
    expect(batches).toEqual([
      [10, 10, 10],
      [10, 10, 10],
      [10, 10, 10],
      [4, 4, 5],
    ]);
    expect(seen.sort((x, y) => x - y)).toEqual(Array.from({ length: size }, (_, i) => i));
    expect(position).toEqual({ epoch: 1, offset: 0 });
  });

  it("splits a global batch into contiguous rank slices in rank order", () => {
    const permutation = Uint32Array.from([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    const planned = planStep({ epoch: 2, offset: 2 }, permutation, 2, 6);
    expect(planned.sampleIndices.map((s) => Array.from(s))).toEqual([
      [7, 6, 5],
      [4, 3, 2],
    ]);
    expect(planned).toMatchObject({ epoch: 2, globalBatchSize: 6, next: { epoch: 2, offset: 8 } });
  });
});

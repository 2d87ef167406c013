/**
 * The sample orders of training.shuffle. Each is a permutation of [0, n) for every n
 * (short last windows, n = 1, n below a batch), the same for the same (seed, epoch) and
 * different for another epoch. Global is bit-identical to the ledger's order before there
 * was a choice (its code is copied below as it was). Block shuffle at workers.replicas
 * ranks gives each rank slices from its own lane's windows only, about windows / L of them
 * per epoch. Feistel keeps no array of the training set and covers up to 2^32 - 1 records.
 * And the cursor resumes and seeks across epochs on each of them.
 */
import { create } from "@bufbuild/protobuf";
import { JobSpecSchema, Shuffle } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import { blockShuffleOrder } from "../src/steps/block-shuffle.js";
import { FeistelPermutation } from "../src/steps/feistel-permutation.js";
import { planStep, stepsPerEpoch } from "../src/steps/ledger.js";
import { SampleCursor } from "../src/steps/sample-cursor.js";
import type { SampleOrder } from "../src/steps/sample-order.js";
import { epochOrder, globalOrder, sampleOrderOf } from "../src/steps/sample-order.js";

/** The ledger's epoch permutation as it was before training.shuffle, kept verbatim as the reference. */
function referenceEpochPermutation(seed: number, epoch: number, size: number): Uint32Array {
  const order = new Uint32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  const random = referenceMulberry32((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

function referenceMulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const block = (window: number, lanes: number): SampleOrder => ({ kind: "block", window, lanes });
const orders: Array<[string, SampleOrder]> = [
  ["global", globalOrder],
  ["feistel", { kind: "feistel" }],
  ["block, window 1, 1 lane", block(1, 1)],
  ["block, window 7, 3 lanes", block(7, 3)],
  ["block, window 64, 4 lanes", block(64, 4)],
  ["block, window 1024, 2 lanes", block(1024, 2)],
];
const sizes = [1, 2, 3, 5, 7, 8, 63, 64, 65, 100, 127, 1000, 1023, 1024, 1025, 4099];

function all(order: { length: number; slice(begin: number, end: number): Uint32Array }): number[] {
  return Array.from(order.slice(0, order.length));
}

const isPermutation = (values: readonly number[], size: number) =>
  values.length === size && new Set(values).size === size && values.every((v) => Number.isInteger(v) && v >= 0 && v < size);

describe.each(orders)("the %s order", (_name, order) => {
  it("is a permutation of [0, n) for every n, with global batches from 4 to more than n", () => {
    for (const size of sizes) {
      // A global batch is at least workers.replicas (block shuffle's lanes, 4 at most here).
      for (const globalBatchSize of [4, 6, 12, 128]) {
        const values = all(epochOrder(order, 7, 3, size, globalBatchSize));
        expect(isPermutation(values, size), `n ${size}, batch ${globalBatchSize}`).toBe(true);
      }
    }
    expect(epochOrder(order, 7, 0, 0, 8).length).toBe(0);
  });

  it("is the same for the same (seed, epoch), and different for another epoch or seed", () => {
    const of = (seed: number, epoch: number) => all(epochOrder(order, seed, epoch, 1000, 32));
    expect(of(5, 2)).toEqual(of(5, 2));
    expect(of(5, 3)).not.toEqual(of(5, 2));
    expect(of(6, 2)).not.toEqual(of(5, 2));
    expect(of(5, 2)).not.toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it("gives the cursor the same steps when it resumes or seeks back across an epoch", () => {
    const size = 103;
    const batch = 12;
    const perEpoch = stepsPerEpoch(size, batch);
    const straight = new SampleCursor(4, size, batch, undefined, order);
    const steps = Array.from({ length: 3 * perEpoch }, () => straight.next(3));
    // Every epoch exactly once, its last step short.
    for (let epoch = 0; epoch < 3; epoch++) {
      const used = steps.filter((s) => s.epoch === epoch).flatMap((s) => s.sampleIndices.flatMap((slice) => [...slice]));
      expect(isPermutation(used, size), `epoch ${epoch}`).toBe(true);
    }
    expect(steps[perEpoch - 1]!.globalBatchSize).toBe(size % batch);
    // A resumed cursor (a checkpoint's position in epoch 1) hands out the same samples, split over another world size.
    const at = steps[perEpoch + 2]!;
    const resumed = new SampleCursor(4, size, batch, { step: at.step, epoch: 1, offset: 2 * batch }, order);
    for (const before of steps.slice(perEpoch + 2)) {
      const again = resumed.next(2);
      expect([again.step, again.epoch]).toEqual([before.step, before.epoch]);
      expect(again.sampleIndices.flatMap((s) => [...s])).toEqual(before.sampleIndices.flatMap((s) => [...s]));
    }
    // Seeking back from epoch 2 into epoch 0 recomputes epoch 0's order.
    straight.seek(perEpoch - 2);
    expect(straight.position()).toEqual({ step: perEpoch - 2, epoch: 0, offset: (perEpoch - 2) * batch });
    for (const before of steps.slice(perEpoch - 2, perEpoch + 1)) {
      expect(straight.next(3).sampleIndices.map((s) => [...s])).toEqual(before.sampleIndices.map((s) => [...s]));
    }
  });
});

describe("the global order", () => {
  it("is bit-identical to the ledger's order before there was a choice", () => {
    for (const [seed, epoch, size] of [
      [1, 0, 60_000],
      [1, 1, 60_000],
      [1, 2, 60_000],
      [5, 0, 1797],
      [0xffffffff, 9, 1000],
      [3, 0, 1],
    ] as const) {
      expect(epochOrder(globalOrder, seed, epoch, size, 128)).toEqual(referenceEpochPermutation(seed, epoch, size));
    }
  });

  it("is what a spec without training.shuffle, or with SHUFFLE_GLOBAL, gets", () => {
    expect(sampleOrderOf(create(JobSpecSchema, {}))).toEqual(globalOrder);
    expect(sampleOrderOf(create(JobSpecSchema, { training: { shuffle: Shuffle.GLOBAL } }))).toEqual(globalOrder);
  });
});

describe("the block order", () => {
  /** Each rank's windows over one epoch at `worldSize` ranks, through the ledger's own split. */
  function windowsPerRank(size: number, window: number, lanes: number, perWorker: number, worldSize: number): Array<Set<number>> {
    const globalBatchSize = lanes * perWorker;
    const order = blockShuffleOrder(11, 2, size, { window, lanes, globalBatchSize });
    const windows = Array.from({ length: worldSize }, () => new Set<number>());
    let position = { epoch: 2, offset: 0 };
    while (position.epoch === 2) {
      const planned = planStep(position, order, worldSize, globalBatchSize);
      planned.sampleIndices.forEach((slice, rank) => {
        for (const index of slice) windows[rank]!.add(Math.floor(index / window));
      });
      position = planned.next;
    }
    return windows;
  }

  it("gives each of L ranks slices from its own lane: about windows / L windows each, shared only in the tail", () => {
    // 100 windows of 64 and a short one of 17; 4 lanes of batch 16.
    const size = 100 * 64 + 17;
    const windowCount = 101;
    const lanes = 4;
    const windows = windowsPerRank(size, 64, lanes, 16, lanes);
    for (const [rank, own] of windows.entries()) {
      // Its lane's 25 or 26 windows, and at most a few of the other lanes' last windows.
      expect(own.size, `rank ${rank}`).toBeGreaterThanOrEqual(Math.floor(windowCount / lanes));
      expect(own.size, `rank ${rank}`).toBeLessThanOrEqual(Math.ceil(windowCount / lanes) + lanes);
    }
    const shared = [...Array(windowCount).keys()].filter((k) => windows.filter((own) => own.has(k)).length > 1);
    expect(shared.length).toBeLessThanOrEqual(lanes);
    // The global order at the same world size makes every rank read nearly every window.
    const order = epochOrder(globalOrder, 11, 2, size, 64);
    const globalWindows = new Set<number>();
    for (let offset = 0; offset < size; offset += 64) for (const index of order.slice(offset, offset + 16)) globalWindows.add(index >> 6);
    expect(globalWindows.size).toBeGreaterThan(0.9 * windowCount);
  });

  it("deals each window to one rank whole while every lane has records, each window's records shuffled", () => {
    const window = 32;
    const order = blockShuffleOrder(3, 0, 8 * window, { window, lanes: 2, globalBatchSize: 16 });
    // Lane 0 fills positions [0, 8) of each step of 16, lane 1 [8, 16).
    const lane = (l: number) => Array.from({ length: 16 }, (_, step) => [...order.slice(step * 16 + l * 8, step * 16 + l * 8 + 8)]).flat();
    for (const l of [0, 1]) {
      const values = lane(l);
      // Four windows, one after the other, each whole and shuffled.
      for (let w = 0; w < 4; w++) {
        const part = values.slice(w * window, (w + 1) * window);
        const k = Math.floor(part[0]! / window);
        expect([...part].sort((a, b) => a - b)).toEqual(Array.from({ length: window }, (_, i) => k * window + i));
        expect(part).not.toEqual([...part].sort((a, b) => a - b));
      }
    }
  });

  it("keeps exactly once at another world size (an elastic job), with less locality", () => {
    const size = 50 * 64;
    const cursor = new SampleCursor(2, size, 64, undefined, block(64, 4));
    const used: number[] = [];
    const perRank: Array<Set<number>> = [new Set(), new Set(), new Set()];
    for (let step = 0; step < stepsPerEpoch(size, 64); step++) {
      cursor.next(3).sampleIndices.forEach((slice, rank) => {
        used.push(...slice);
        for (const index of slice) perRank[rank]!.add(index >> 6);
      });
    }
    expect(isPermutation(used, size)).toBe(true);
    // A rank of 3 spans two lanes of 4: more windows than a lane's, fewer than all.
    for (const own of perRank) expect(own.size).toBeLessThan(50);
  });

  it("takes its window from the spec, or from the sharded dataset's block size", () => {
    const spec = (training: object, recordsPerBlock = 0) =>
      create(JobSpecSchema, {
        training,
        workers: { replicas: 3 },
        dataset: { manifest: "d.json", facts: { digest: "x", trainRecords: 10, recordsPerBlock } },
      });
    expect(sampleOrderOf(spec({ shuffle: Shuffle.BLOCK, shuffleWindow: 500 }, 1024))).toEqual(block(500, 3));
    expect(sampleOrderOf(spec({ shuffle: Shuffle.BLOCK }, 1024))).toEqual(block(1024, 3));
    expect(() => sampleOrderOf(spec({ shuffle: Shuffle.BLOCK }))).toThrow(/^spec\.training\.shuffleWindow: block shuffle needs a window/);
    expect(sampleOrderOf(spec({ shuffle: Shuffle.FEISTEL }))).toEqual({ kind: "feistel" });
  });
});

describe("the feistel order", () => {
  it("holds no array of the training set: its memory does not grow with n", () => {
    const before = process.memoryUsage().arrayBuffers;
    const permutations = [1e3, 1e6, 1e8, 2 ** 32 - 1].map((size) => new FeistelPermutation(1, 0, size));
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(4096);
    expect(permutations.map((p) => p.length)).toEqual([1e3, 1e6, 1e8, 2 ** 32 - 1]);
    expect(() => new FeistelPermutation(1, 0, 2 ** 32)).toThrow(RangeError);
  });

  it("maps positions of a training set of 3,000,000,007 records to distinct indices inside it", () => {
    const size = 3_000_000_007;
    const permutation = new FeistelPermutation(9, 4, size);
    const positions = new Set<number>();
    const seen = new Set<number>();
    const sample = (position: number) => {
      const index = permutation.at(position);
      expect(index >= 0 && index < size && Number.isInteger(index), `position ${position}`).toBe(true);
      positions.add(position);
      seen.add(index);
    };
    // The first and last steps, and positions spread over the rest of the epoch.
    for (let p = 0; p < 20_000; p++) sample(p);
    for (let p = size - 20_000; p < size; p++) sample(p);
    for (let i = 0; i < 40_000; i++) sample(20_000 + Math.floor((i * (size - 40_000)) / 40_000) + (i % 7));
    expect(positions.size).toBe(80_000);
    expect(seen.size).toBe(80_000);
    // A slice is the positions one by one, as the ledger asks for a step.
    expect([...permutation.slice(size - 3, size)]).toEqual([size - 3, size - 2, size - 1].map((p) => permutation.at(p)));
    // Not the identity, nor a shift: neighbouring positions land far apart.
    const first = [...permutation.slice(0, 1000)];
    const close = first.slice(1).filter((index, i) => Math.abs(index - first[i]!) < size / 1000).length;
    expect(close).toBeLessThan(10);
  });
});
